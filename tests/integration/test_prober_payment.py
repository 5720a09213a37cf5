"""Safe synthetic payments against the real stand-ins (issue 14, item 4): the payment check
never charges — test mode or a zero-value authorisation, reversed either way — and an
environment can turn the payment check, or every check that writes, off."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporters.govops_prober.from_estate import config_from_estate
from exporters.govops_prober.prober import Prober
from exporters.govops_prober.server import Exporter
from govops.registry import load_estate
from tests.integration.standin_estate import StandinEstate, start_estate

ROOT = Path(__file__).resolve().parents[2]
PROVINCE = "cao_bang"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("standins")


@pytest.fixture(scope="module")
def estate(stores: Path) -> Iterator[StandinEstate]:
    running = start_estate([PROVINCE], stores)
    yield running
    running.close()


def _probe(estate: StandinEstate, tmp_path: Path, **options: Any) -> dict[str, float]:
    config = config_from_estate(
        load_estate(ROOT / "inventories/lab/estate.yml"),
        endpoints=estate.endpoints,
        state_dir=str(tmp_path / "state"),
        **options,
    )
    prober = Prober(config)
    try:
        status, _, body = Exporter(prober).probe({"target": [PROVINCE], "module": ["all"]}, "20")
    finally:
        prober.close()
    assert status == 200
    samples = {}
    for line in body.decode().splitlines():
        if line.startswith("govops_probe_success"):
            name, _, value = line.rpartition(" ")
            check = name.split('check="', 1)[1].split('"', 1)[0]
            samples[check] = float(value)
    return samples


def _payments(stores: Path) -> list[dict[str, Any]]:
    """What the payment platform (the portal stand-in) holds, read from its own store."""
    path = stores / "national-portal.sqlite"
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT p.id, p.amount, s.mode, s.status FROM payments p"
            " LEFT JOIN payment_states s ON s.id = p.id"
        ).fetchall()
    return [dict(r) for r in rows]


@pytest.mark.parametrize(
    ("mode", "amount", "kind"),
    [("test_mode", 1000, "test"), ("zero_authorization", 0, "authorize")],
)
def test_the_payment_check_never_charges_and_reverses(
    estate: StandinEstate, stores: Path, tmp_path: Path, mode: str, amount: int, kind: str
) -> None:
    before = {p["id"] for p in _payments(stores)}
    samples = _probe(estate, tmp_path, payment_mode=mode)
    assert samples["payment"] == 1
    made = [p for p in _payments(stores) if p["id"] not in before]
    assert made == [{"id": made[0]["id"], "amount": amount, "mode": kind, "status": "reversed"}]


def test_a_charge_is_not_what_the_prober_makes_and_cannot_be_reversed(
    estate: StandinEstate,
) -> None:
    """The platform itself refuses to reverse a real charge: only synthetic ones are."""

    def post(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            estate.url("national-portal") + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, charge = post("/api/payments", {"amount": 5000, "dossier_id": "real-1"})
    assert status == 201 and charge["test_mode"] is False
    status, _ = post(f"/api/payments/{charge['transaction_id']}/reverse", {})
    assert status == 404
    status, refused = post(
        "/api/payments", {"amount": 1000, "mode": "authorize", "dossier_id": "x"}
    )
    assert status == 400 and "zero-value" in refused["detail"]


def test_payment_off_and_write_checks_off(
    estate: StandinEstate, stores: Path, tmp_path: Path
) -> None:
    before = len(_payments(stores))
    no_payment = _probe(estate, tmp_path / "a", payment_mode="off")
    assert "payment" not in no_payment and no_payment["dossier_submit"] == 1
    reads = _probe(estate, tmp_path / "b", payment_mode="zero_authorization", write_checks=False)
    assert set(reads) == {"sso_login", "dossier_sync", "gateway_relay"}
    assert all(v == 1 for v in reads.values())
    assert len(_payments(stores)) == before
