"""The probe as Prometheus metrics: a custom collector that probes when it is collected.

Synchronous collection at scrape time (the exporter guide): nothing is cached between scrapes,
so what Prometheus stores is what the systems did at that moment. Labels are the registry's
(province codename, system id, check name, commune code): bounded, never taken from a request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from prometheus_client.registry import Collector
else:
    try:
        from prometheus_client.registry import Collector
    except ImportError:  # older prometheus_client (Debian's): any object with collect() does
        Collector = object

from .prober import Prober, ProbeResult


class ProbeCollector(Collector):
    def __init__(self, prober: Prober, province: str, module: str, timeout: float) -> None:
        self.prober, self.province, self.module, self.timeout = prober, province, module, timeout
        self.result: ProbeResult | None = None  # kept for `debug=true` answers

    def collect(self) -> Iterator[Metric]:
        self.result = result = self.prober.run(self.province, self.module, self.timeout)
        yield from families(result)


def families(result: ProbeResult) -> Iterator[Metric]:
    p = result.province
    success = GaugeMetricFamily(
        "govops_probe_success",
        "1 if the synthetic transaction completed as a citizen or official would need it.",
        labels=["province", "system", "check"],
    )
    duration = GaugeMetricFamily(
        "govops_probe_duration_seconds",
        "How long the synthetic transaction took (its timeout when it never finished).",
        labels=["province", "system", "check"],
    )
    for c in result.checks:
        success.add_metric([p, c.system, c.name], 1.0 if c.ok else 0.0)
        duration.add_metric([p, c.system, c.name], c.duration)
    yield success
    yield duration
    if result.commune_last_success:
        last = GaugeMetricFamily(
            "govops_commune_last_success_timestamp_seconds",
            "When a dossier was last submitted successfully in the commune (0: never).",
            labels=["province", "commune"],
        )
        for commune, at in sorted(result.commune_last_success.items()):
            last.add_metric([p, commune], at)
        yield last
        period = GaugeMetricFamily(
            "govops_commune_test_period_seconds",
            "Every commune is due a successful test dossier within this period (the alert's bar).",
            labels=["province"],
        )
        period.add_metric([p], result.commune_period)
        yield period
    f = result.findings
    if any(c.name == "dossier_submit" for c in result.checks):
        attempted = GaugeMetricFamily(
            "govops_dossier_communes_attempted",
            "Communes given a test dossier in this scrape (the rotation's batch).",
            labels=["province"],
        )
        attempted.add_metric([p], f.communes_attempted)
        yield attempted
        failed = GaugeMetricFamily(
            "govops_dossier_communes_failed",
            "Communes of this scrape's batch where the test dossier was not accepted.",
            labels=["province"],
        )
        failed.add_metric([p], f.communes_failed)
        yield failed
    if f.sync_lag_seconds is not None:
        lag = GaugeMetricFamily(
            "govops_dossier_sync_lag_seconds",
            "Age of the oldest dossier record not yet synced to the national portal.",
            labels=["province"],
        )
        lag.add_metric([p], f.sync_lag_seconds)
        yield lag
    if f.legacy_portals:
        redirect = GaugeMetricFamily(
            "govops_legacy_portal_redirect_ok",
            "1 if the old province's public-service portal answers 301 to the national portal.",
            labels=["province", "old_province"],
        )
        for code, ok in sorted(f.legacy_portals.items()):
            redirect.add_metric([p, code], 1.0 if ok else 0.0)
        yield redirect
    if f.trial_mode:
        trial = GaugeMetricFamily(
            "govops_system_trial_mode",
            "1 while the system runs in trial operation (0 once it went live).",
            labels=["province", "system"],
        )
        for system, in_trial in sorted(f.trial_mode.items()):
            trial.add_metric([p, system], 1.0 if in_trial else 0.0)
        yield trial
    up = GaugeMetricFamily(
        "govops_up",
        "1 if the prober ran every check to a verdict of its own; 0 if it failed itself.",
        labels=["province"],
    )
    up.add_metric([p], 1.0 if result.completed else 0.0)
    yield up
    took = GaugeMetricFamily(
        "govops_scrape_duration_seconds",
        "How long this probe took, all checks included.",
        labels=["province"],
    )
    took.add_metric([p], result.duration)
    yield took
