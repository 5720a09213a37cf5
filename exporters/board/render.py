"""Queries → a model of the board → HTML (jinja2). One page, no JavaScript, prints well.

Each query prefers the recording rule (present on zone and national servers) and falls back to
the raw series (a bare Prometheus that has no rules loaded), so the board works on either.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import jinja2

from govops.registry.catalog import SYSTEM_IDS, catalog
from govops.registry.estate import Estate

from .prometheus import Sample, instant

Query = Callable[[str], list[Sample]]
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")  # the tz database (tzdata), not a hand-kept offset

Q_FRONTS = (
    "province_system:govops_front_up:max"
    ' or max by (province, system) (probe_success{job="blackbox_https", tier!="national"})'
)
# The prober's cutover checks fail by design until their step; the readiness evidence counts
# them (exporters/rules/zone.py CUTOVER_CHECKS), the board's failing transactions do not.
CUTOVER_CHECKS = frozenset(
    {"legacy_portal_redirect", "portal_dossier_routed", "official_operation"}
)
Q_CHECKS = (
    "province_system_check:govops_probe_success:max"
    " or max by (province, system, check) (govops_probe_success)"
)
Q_COMMUNES = (
    "province:govops_communes:count"
    " or count by (province) (max by (province, commune)"
    " (govops_commune_last_success_timestamp_seconds))"
)
Q_TESTED = (
    "province:govops_communes_tested:count"
    " or count by (province) (time() - max by (province, commune)"
    " (govops_commune_last_success_timestamp_seconds) <= on (province) group_left ()"
    " max by (province) (govops_commune_test_period_seconds))"
)
Q_LAG = (
    "province:govops_dossier_sync_lag_seconds:max"
    " or max by (province) (govops_dossier_sync_lag_seconds)"
)
Q_READINESS = (
    "check:govops_readiness_provinces_done:sum or sum by (check) (govops_readiness_check_done)"
)
Q_LATE = "-govops_cutover_deadline_seconds_left > 0"
Q_ALERTS = 'ALERTS{alertstate="firing"}'


@dataclass
class ProvinceRow:
    codename: str
    name: str
    systems: dict[str, float | None]  # 1 up, 0 down, None no data
    failing: list[str] = field(default_factory=list)  # "system/check"
    communes_tested: int | None = None
    communes_total: int = 0
    sync_lag: float | None = None
    late_steps: list[str] = field(default_factory=list)

    @property
    def all_up(self) -> bool:
        return all(v == 1 for v in self.systems.values())


@dataclass(frozen=True)
class ReadinessRow:
    check: str
    title: str
    done: int | None
    dispatch: int | None


@dataclass
class Board:
    generated: datetime
    prometheus: str
    environment: str
    provinces: list[ProvinceRow]
    readiness: list[ReadinessRow]
    alerts: list[dict[str, str]]
    took: float = 0.0
    declared: int = 0  # provinces the estate declares (the board shows those watched)

    @property
    def provinces_up(self) -> int:
        return sum(1 for p in self.provinces if p.all_up)

    @property
    def communes(self) -> tuple[int, int]:
        tested = sum(p.communes_tested or 0 for p in self.provinces)
        return tested, sum(p.communes_total for p in self.provinces)

    @property
    def late(self) -> int:
        return sum(len(p.late_steps) for p in self.provinces)


def collect(estate: Estate, prometheus: str, query: Query | None = None) -> Board:
    ask: Query = query or (lambda q: instant(prometheus, q))
    started = time.perf_counter()
    rows = {
        p: ProvinceRow(
            p,
            pe.province.name,
            dict.fromkeys(SYSTEM_IDS),
            communes_total=len(pe.province.communes),
        )
        for p, pe in estate.provinces.items()
    }
    declared = len(rows)
    fronts = ask(Q_FRONTS)
    # The provinces this Prometheus watches (a probed front answers 0 or 1, never nothing): a
    # lab running three of its 34 provinces shows three rows, not 31 rows of "no data".
    # Nothing watched yet: every declared province, all "no data".
    watched = {s.labels.get("province", "") for s in fronts} & set(rows)
    if watched:
        rows = {p: row for p, row in rows.items() if p in watched}
    for s in fronts:
        row = rows.get(s.labels.get("province", ""))
        if row is not None and s.labels.get("system") in row.systems:
            row.systems[s.labels["system"]] = s.value
    for s in ask(Q_CHECKS):
        row = rows.get(s.labels.get("province", ""))
        check = s.labels.get("check", "")
        if (
            row is not None
            and s.value == 0
            and check != "front_ready"
            and check not in CUTOVER_CHECKS
        ):
            row.failing.append(f"{s.labels.get('system')}/{s.labels.get('check')}")
    for s in ask(Q_TESTED):
        if (row := rows.get(s.labels.get("province", ""))) is not None:
            row.communes_tested = int(s.value)
    known_communes = {s.labels.get("province", "") for s in ask(Q_COMMUNES)}
    for p in known_communes:
        if p in rows and rows[p].communes_tested is None:
            rows[p].communes_tested = 0  # probed, none within the period
    for s in ask(Q_LAG):
        if (row := rows.get(s.labels.get("province", ""))) is not None:
            row.sync_lag = s.value
    for s in ask(Q_LATE):
        if (row := rows.get(s.labels.get("province", ""))) is not None:
            row.late_steps.append(s.labels.get("step", "?"))
    done = {s.labels.get("check", ""): int(s.value) for s in ask(Q_READINESS)}
    readiness = [
        ReadinessRow(cid, check.title, done.get(cid), check.dispatch_done)
        for cid, check in catalog().checks.items()
    ]
    alerts = sorted(
        (s.labels for s in ask(Q_ALERTS)),
        key=lambda a: (
            a.get("severity") != "critical",
            a.get("alertname", ""),
            a.get("province", ""),
        ),
    )
    for row in rows.values():
        row.failing.sort()
        row.late_steps.sort()
    return Board(
        generated=datetime.now(UTC),
        prometheus=prometheus,
        environment=estate.environment,
        provinces=list(rows.values()),
        readiness=readiness,
        alerts=alerts,
        took=time.perf_counter() - started,
        declared=declared,
    )


def render(board: Board) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("exporters.board", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = _duration
    template = env.get_template("board.html.j2")
    return template.render(
        board=board,
        systems=SYSTEM_IDS,
        local_time=board.generated.astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M:%S"),
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
