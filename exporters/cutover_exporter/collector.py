"""The run's progress as metrics, collected at scrape time (no cache between scrapes).

Deadline series exist only for steps not yet done, so `-govops_cutover_deadline_seconds_left
> 0` is exactly "late", and a step that finishes stops alerting at the next scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from govops.redact import redact_text

from .source import ProgressLike, ProgressSource, SourceDown

log = logging.getLogger("govops_cutover_exporter")
# Every status the engine writes; each is a series (0 or 1) so that queries need no absent().
STEP_STATUSES = (
    "pending", "running", "waiting", "uncertain", "done", "failed", "skipped",
    "rolling_back", "rolled_back", "rollback_failed", "aborted",
)  # fmt: skip


class CutoverCollector(Collector):
    def __init__(self, source: ProgressSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = 1.0
        reason = ""
        families: list[Metric] = []
        try:
            progress = self.source.progress()
            if progress is not None:
                families = list(progress_families(progress))
        except SourceDown as exc:  # missing or unreadable: say why, keep serving
            log.error("cannot read the runbook state (%s): %s", exc.reason, redact_text(str(exc)))
            up, reason, families = 0.0, exc.reason, []
        except Exception as exc:
            log.error(
                "cannot read the runbook state: %s: %s", type(exc).__name__, redact_text(str(exc))
            )
            up, reason, families = 0.0, "error", []
        yield from families
        yield _single("govops_cutover_up", "1 if the runbook state store was read.", up)
        down = GaugeMetricFamily(
            "govops_cutover_down_info",
            "1 with the reason the store was not read (missing, not_a_store, unreachable, "
            "error); absent while govops_cutover_up is 1.",
            labels=["reason"],
        )
        if reason:
            down.add_metric([reason], 1.0)
        yield down
        yield _single(
            "govops_cutover_scrape_duration_seconds",
            "How long reading the runbook state took.",
            time.perf_counter() - started,
        )


def _single(name: str, doc: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], value)
    return family


def progress_families(p: ProgressLike) -> Iterator[Metric]:
    now = p.now.timestamp()
    info = GaugeMetricFamily(
        "govops_cutover_run_info", "The run shown (always 1).", labels=["run", "runbook", "status"]
    )
    info.add_metric([p.run.id, p.run.runbook, p.run.status], 1)
    yield info

    status = GaugeMetricFamily(
        "govops_cutover_step_status",
        "1 for the step's current status in the province, 0 for the others.",
        labels=["province", "step", "status"],
    )
    deadline = GaugeMetricFamily(
        "govops_cutover_deadline_timestamp_seconds",
        "The step's deadline (Unix time).",
        labels=["province", "step"],
    )
    left = GaugeMetricFamily(
        "govops_cutover_deadline_seconds_left",
        "Seconds until the deadline of a step not yet done (negative: late by that much).",
        labels=["province", "step"],
    )
    expected = GaugeMetricFamily(
        "govops_cutover_step_expected_seconds",
        "How long the step is expected to take (its time clear).",
        labels=["province", "step"],
    )
    at_risk = GaugeMetricFamily(
        "govops_cutover_step_at_risk",
        "1 if the step is not late yet but the work ahead of it will not fit before its deadline.",
        labels=["province", "step"],
    )
    for s in p.steps:
        known = s.status in STEP_STATUSES
        for value in (*STEP_STATUSES, *(() if known else (s.status,))):
            status.add_metric([s.province, s.step_id, value], 1.0 if value == s.status else 0.0)
        deadline.add_metric([s.province, s.step_id], s.deadline.timestamp())
        expected.add_metric([s.province, s.step_id], s.expected_seconds)
        if s.status != "done":
            left.add_metric([s.province, s.step_id], s.deadline.timestamp() - now)
            at_risk.add_metric([s.province, s.step_id], 1.0 if s.at_risk else 0.0)
    yield from (status, deadline, left, expected, at_risk)

    province_status = GaugeMetricFamily(
        "govops_cutover_province_status",
        "The province's status in the run (1 for the current one).",
        labels=["province", "status"],
    )
    steps_done = GaugeMetricFamily(
        "govops_cutover_province_steps_done", "Steps done in the province.", labels=["province"]
    )
    steps_total = GaugeMetricFamily(
        "govops_cutover_province_steps_total", "Steps of the runbook.", labels=["province"]
    )
    for pr in p.provinces:
        province_status.add_metric([pr.province, pr.status], 1)
        steps_done.add_metric([pr.province], pr.steps_done)
        steps_total.add_metric([pr.province], pr.steps_total)
    yield from (province_status, steps_done, steps_total)

    done = GaugeMetricFamily(
        "govops_readiness_check_done",
        "1 if the national readiness check is proven done in the province by the runbook.",
        labels=["province", "check"],
    )
    dispatch = GaugeMetricFamily(
        "govops_readiness_dispatch_done",
        "Provinces the government dispatch counted done (13:00, 28 June 2025), for comparison.",
        labels=["check"],
    )
    provinces = [pr.province for pr in p.provinces]
    for r in p.readiness:
        proven = set(r.provinces_done)
        for province in provinces:
            done.add_metric([province, r.check_id], 1.0 if province in proven else 0.0)
        if r.dispatch_done is not None:
            dispatch.add_metric([r.check_id], r.dispatch_done)
    yield from (done, dispatch)

    tested = GaugeMetricFamily(
        "govops_cutover_communes_tested",
        "Communes where the per-commune step was done at least once.",
        labels=["province", "step"],
    )
    total = GaugeMetricFamily(
        "govops_cutover_communes_total", "Communes of the province.", labels=["province", "step"]
    )
    for c in p.communes:
        tested.add_metric([c.province, c.step_id], c.tested)
        total.add_metric([c.province, c.step_id], c.total)
    yield from (tested, total)
