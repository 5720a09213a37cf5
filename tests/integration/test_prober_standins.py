"""The domain prober against real stand-ins: each transaction passes, and each fault shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporters.govops_prober.from_estate import config_from_estate
from exporters.govops_prober.prober import Prober
from exporters.govops_prober.server import Exporter
from govops.registry import load_estate, provinces
from tests.integration.standin_estate import StandinEstate, start_estate

ROOT = Path(__file__).resolve().parents[2]
PROVINCE = "cao_bang"  # a small province: 56 communes


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinEstate]:
    running = start_estate([PROVINCE], tmp_path_factory.mktemp("standins"))
    yield running
    running.close()


@pytest.fixture
def exporter(estate: StandinEstate, tmp_path: Path) -> Iterator[Exporter]:
    config = config_from_estate(
        load_estate(ROOT / "inventories/lab/estate.yml"),
        endpoints=estate.endpoints,
        # Every commune at every scrape: the whole province is exercised in one probe.
        commune_period_seconds=60.0,
        scrape_interval_seconds=60.0,
        state_dir=str(tmp_path / "state"),
    )
    prober = Prober(config)
    yield Exporter(prober)
    prober.close()


def metrics(exporter: Exporter, module: str = "all") -> dict[str, float]:
    status, _, body = exporter.probe({"target": [PROVINCE], "module": [module]}, "20")
    assert status == 200
    samples = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def success(samples: dict[str, float], check: str, system: str = "procedures") -> float:
    return samples[
        f'govops_probe_success{{check="{check}",province="{PROVINCE}",system="{system}"}}'
    ]


def test_every_transaction_passes_on_a_healthy_province(exporter: Exporter) -> None:
    samples = metrics(exporter)
    failed = [k for k, v in samples.items() if k.startswith("govops_probe_success") and v != 1]
    assert not failed
    communes = [k for k in samples if k.startswith("govops_commune_last_success")]
    assert len(communes) == len(provinces()[PROVINCE].communes)
    assert all(samples[k] > 0 for k in communes)
    assert samples[f'govops_up{{province="{PROVINCE}"}}'] == 1
    assert f'govops_dossier_sync_lag_seconds{{province="{PROVINCE}"}}' in samples


def test_a_system_down_fails_its_transactions_only(
    exporter: Exporter, estate: StandinEstate
) -> None:
    estate.fault(f"{PROVINCE}/reporting", {"mode": "down"})
    try:
        samples = metrics(exporter)
    finally:
        estate.fault(f"{PROVINCE}/reporting", None)
    assert success(samples, "report_submit", "reporting") == 0
    assert success(samples, "sso_login") == 1
    assert success(samples, "meeting_join", "meetings") == 1


def test_a_refused_commune_is_named_and_never_marked_done(
    exporter: Exporter, estate: StandinEstate
) -> None:
    commune = provinces()[PROVINCE].communes[3].code_str
    estate.fault(f"{PROVINCE}/procedures", {"mode": "refuse_commune", "commune": commune})
    try:
        samples = metrics(exporter, "dossier_submit")
        result = exporter.prober.run(PROVINCE, "dossier_submit", 20)
    finally:
        estate.fault(f"{PROVINCE}/procedures", None)
    assert success(samples, "dossier_submit") == 0
    labels = f'{{commune="{commune}",province="{PROVINCE}"}}'
    assert samples[f"govops_commune_last_success_timestamp_seconds{labels}"] == 0
    assert samples[f'govops_dossier_communes_failed{{province="{PROVINCE}"}}'] == 1
    assert commune in result.checks[0].detail


def test_the_payment_platform_down_fails_payment_and_sync(
    exporter: Exporter, estate: StandinEstate
) -> None:
    estate.fault("national-portal", {"mode": "error"})
    try:
        samples = metrics(exporter)
    finally:
        estate.fault("national-portal", None)
    assert success(samples, "payment") == 0
    assert success(samples, "sso_login") == 0
    assert success(samples, "notification_roundtrip") == 0
    assert success(samples, "axis_roundtrip", "documents") == 1
