"""What every generated rule shares: the Alert and Record shapes, the runbook link, the
thresholds an operator may want to argue about, and the probe selectors the tables use.

The tables themselves are in zone.py, slo.py and national.py; generate.py writes the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RUNBOOK_BASE = "https://git.gov.example/govops/govops/-/blob/main/docs/alerts.md"
# Thresholds an operator may want to argue about, in one place.
SYNC_LAG_WARNING_SECONDS = 15 * 60
CERT_WARNING_DAYS = 21
CERT_CRITICAL_DAYS = 7
# Backups (backups.py). Incremental backups run hourly and a full or diff nightly: a day and two
# hours without any is a broken schedule, not a late one.
BACKUP_MAX_AGE_HOURS = 26
BACKUP_METRICS_STALE_SECONDS = 10 * 60
# The estate's backups.archive_timeout (govops_backups.archive_timeout): with writes, a WAL
# segment is finished and archived at least this often.
ARCHIVE_TIMEOUT_SECONDS = 60
STANDBY_LAG_SECONDS = 60
# The transactions citizens do themselves; the others are officials' or system-to-system.
CITIZEN_CHECKS = ("sso_login", "dossier_submit", "payment", "notification_roundtrip")
OFFICIAL_CHECKS = (
    "axis_roundtrip",
    "report_submit",
    "meeting_join",
    "gateway_relay",
    "dossier_sync",
)
# Fronts of the provinces' systems (national counterparts are probed too, tier="national").
FRONTS = 'job="blackbox_https", tier!="national"'
# Right after a system-down page resolves, the alerts Alertmanager inhibited for it (the
# province's transactions) would page until the prober's next scrape proves them well again:
# they hold for 5 minutes from the moment every system of the province answers again. The page
# keeps firing a minute longer (SYSTEM_DOWN_KEEP_FIRING) so that Alertmanager hears these
# resolve while their inhibitor still fires: had both ended in one evaluation, a group flush
# between Prometheus' two posts paged the echo (CI, stop 31).
SYSTEM_DOWN_KEEP_FIRING = "1m"
AFTER_SYSTEM_DOWN = (
    'max by (province) (max_over_time(ALERTS{alertname="GovopsSystemDown", '
    'alertstate="firing"}[5m]))\n'
    f"unless on (province) (max by (province, system) (probe_success{{{FRONTS}}}) == 0)"
)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)
    keep_firing_for: str = ""

    def rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr, "for": self.for_}
        if self.keep_firing_for:
            rule["keep_firing_for"] = self.keep_firing_for
        return rule | {
            "labels": {"severity": self.severity, **self.labels},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{RUNBOOK_BASE}#{self.name.lower()}",
            },
        }


@dataclass(frozen=True)
class Record:
    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)

    def rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(self.labels)
        return rule
