"""The SLO table and its multiwindow, multi-burn-rate alerts (`slo.yml`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporters.rules.conventions import CITIZEN_CHECKS, FRONTS, OFFICIAL_CHECKS, Alert, Record


@dataclass(frozen=True)
class Slo:
    name: str
    objective: float  # fraction of good probes over 30 days
    what: str  # who can do what when it is met
    good: str  # a 0/1 series per probe: 1 good, 0 bad


@dataclass(frozen=True)
class BurnWindow:
    """Multiwindow, multi-burn-rate alerting (the SRE workbook, ch. 5; kubernetes-mixin)."""

    long: str
    short: str
    factor: float  # burn rate: how many times faster than "exactly on budget"
    severity: str
    for_: str

    @property
    def budget_share(self) -> str:
        """The share of a 30-day budget this window spends when it fires (for the summary)."""
        hours = _hours(self.long)
        return f"{self.factor * hours / (30 * 24):.0%}"


def _in_service(series: str) -> str:
    """The transaction's probes, counted from its first success within the longest window: a
    transaction that never worked yet is not in service (the Axis round trip of a province
    whose agencies the cutover has not registered yet); GovopsTransactionFailing reports it, the
    error budget does not burn for it. Coarse subquery steps keep the 3-day look cheap."""
    return (
        f"{series}\nand on (province, system, check)\n"
        f"max by (province, system, check) (max_over_time({series}[3d:5m])) == 1"
    )


SLOS = (
    Slo(
        "front_availability",
        0.995,
        "citizens and officials reach the system's front door",
        f"probe_success{{{FRONTS}}}",
    ),
    Slo(
        "citizen_transactions",
        0.99,
        "citizens sign in, submit dossiers, pay and get notified",
        _in_service(f'govops_probe_success{{check=~"{"|".join(CITIZEN_CHECKS)}"}}'),
    ),
    Slo(
        "official_transactions",
        0.99,
        "officials exchange documents, report, meet and sync dossiers",
        _in_service(f'govops_probe_success{{check=~"{"|".join(OFFICIAL_CHECKS)}"}}'),
    ),
)
BURN_WINDOWS = (
    BurnWindow("1h", "5m", 14.4, "critical", "2m"),
    BurnWindow("6h", "30m", 6, "critical", "15m"),
    BurnWindow("1d", "2h", 3, "warning", "1h"),
    BurnWindow("3d", "6h", 1, "warning", "3h"),
)
SLO_RECORD = "province_system:govops_slo_errors:ratio_rate{window}"
# One sample per evaluation of each SLO's good ratio, absent while planned work is open on the
# system: the windows average these, so a planned drain is neither good nor bad, it is not there.
SLO_SAMPLE = "province_system:govops_slo_good:sample"
# Planned work (a runbook step draining, restarting or switching something): 1 while the step's
# Alertmanager silence is active, labelled province and system ("" = the whole province), from
# the planned-work exporter beside Alertmanager (roles/alertmanager; docs/alerts.md).
PLANNED_WORK = 'max by (province, system) (govops_planned_work{system!=""}) > 0'
PLANNED_PROVINCE = 'max by (province) (govops_planned_work{system=""}) > 0'
# A burn that follows a system-down page in the same province is that fault's echo: on-call
# was paged for the cause. Paging windows clear within 30 min of recovery; 1h covers them.
PAGED_CAUSE = 'max_over_time(ALERTS{alertname="GovopsSystemDown", alertstate="firing"}[1h])'


def _hours(window: str) -> float:
    units = {"m": 1 / 60, "h": 1.0, "d": 24.0}
    return float(window[:-1]) * units[window[-1]]


def slo_windows() -> list[str]:
    seen: dict[str, None] = {}
    for w in BURN_WINDOWS:
        seen[w.short] = None
        seen[w.long] = None
    return sorted(seen, key=_hours)


def slo_groups() -> list[dict[str, Any]]:
    samples = [
        Record(
            SLO_SAMPLE,
            f"avg by (province, system) (\n{slo.good}\n)\nunless on (province, system)\n"
            f"({PLANNED_WORK})\nunless on (province)\n({PLANNED_PROVINCE})",
            {"slo": slo.name},
        )
        for slo in SLOS
    ]
    records = samples + [
        Record(
            SLO_RECORD.format(window=w),
            f'1 - avg_over_time({SLO_SAMPLE}{{slo="{slo.name}"}}[{w}])',
            {"slo": slo.name},
        )
        for slo in SLOS
        for w in slo_windows()
    ]
    alerts = []
    for slo in SLOS:
        budget = 1 - slo.objective
        for bw in BURN_WINDOWS:
            threshold = f"{bw.factor:g} * {budget:.4g}"
            long_ = SLO_RECORD.format(window=bw.long)
            short = SLO_RECORD.format(window=bw.short)
            sel = f'{{slo="{slo.name}"}}'
            alerts.append(
                Alert(
                    name="GovopsErrorBudgetBurn",
                    expr=(
                        f"{long_}{sel} > ({threshold})\nand\n{short}{sel} > ({threshold})"
                        f"\nunless on (province)\n{PAGED_CAUSE}"
                    ),
                    for_=bw.for_,
                    severity=bw.severity,
                    labels={"slo": slo.name, "long_window": bw.long, "short_window": bw.short},
                    summary=(
                        "{{ $labels.province }} {{ $labels.system }}: "
                        f"failing {bw.factor:g}× faster than the {slo.objective:.1%} "
                        f"objective allows ({slo.name}); "
                        f"{bw.budget_share} of the month's error budget gone in {bw.long}."
                    ),
                    description=(
                        f"Objective: {slo.what}, {slo.objective:.1%} of probes over 30 days. "
                        f"Error ratio over {bw.long} is {{{{ $value | humanizePercentage }}}} "
                        f"and still above {bw.factor:g}× the budget over the last {bw.short}, "
                        "so this is happening now, not a past blip. Planned work is not "
                        "counted, and within 1h of a system-down page in the province this does "
                        "not page again. Find the failing check on the province dashboard."
                    ),
                )
            )
    # One group, records first: rules of a group run in order, so each alert reads the ratios
    # computed at the same evaluation (two groups would race, the alert reading older ones).
    rules = [r.rule() for r in records] + [a.rule() for a in alerts]
    return [{"name": "govops.slo", "rules": rules}]
