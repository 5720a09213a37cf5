"""The network transfer's registrations against real stand-ins (issue 16 part 4): the NDXP
registers which provincial endpoint serves a province; switching it from the old province's
endpoint to the merged province's procedures system makes a dossier sent through the platform
land in the new system, and registering the old endpoint again (the rollback) sends the next
one back there. Each call is the operation as the stand-in adapter makes it."""

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
from govops.registry import load_estate, provinces
from tests.integration.standin_estate import StandinEstate, start_estate

ROOT = Path(__file__).resolve().parents[2]
NEW = "cao_bang"  # the merged province
OLD = "lang_son"  # stands for an old province's endpoint (its own procedures stand-in)
SYNTHETIC = {"name": "govops synthetic probe", "synthetic": True}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transfer")


@pytest.fixture(scope="module")
def standins(stores: Path) -> Iterator[StandinEstate]:
    running = start_estate([NEW, OLD], stores)
    yield running
    running.close()


def _http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _dossier_ids(stores: Path, province: str) -> list[str]:
    with sqlite3.connect(stores / f"{province}-procedures.sqlite") as db:
        return [r[0] for r in db.execute("SELECT id FROM dossiers")]


def test_switch_lands_in_the_new_system_and_rollback_in_the_old(
    standins: StandinEstate, stores: Path, tmp_path: Path
) -> None:
    config = config_from_estate(
        load_estate(ROOT / "inventories/lab/estate.yml"),
        endpoints=standins.endpoints,
        state_dir=str(tmp_path / "state"),
    )
    ops = config.operations["counterparts.ndxp"]
    ndxp = standins.url("national-ndxp")
    old, new = standins.url(f"{OLD}/procedures"), standins.url(f"{NEW}/procedures")
    # Each system knows its own communes: the dossier names one the receiving side knows
    # (an old province's system still serves its old communes until the transfer).
    old_dossier = {"province": NEW, "procedure_code": "1.001", "applicant": SYNTHETIC,
                   "commune_code": provinces()[OLD].communes[0].code_str}  # fmt: skip
    new_dossier = {**old_dossier, "commune_code": provinces()[NEW].communes[0].code_str}

    def call(operation: str, inputs: dict[str, Any]) -> tuple[int, Any]:
        method, url, body = ops[operation].request(ndxp, inputs)
        return _http(method, url, body)

    status, answer = call("provider", {"province": NEW})
    assert (status, answer["error"]) == (404, "not_registered")
    # Before the transfer: the old province's endpoint serves the province.
    assert call("register_provider", {"province": NEW, "endpoint": old})[0] == 200
    status, before = call("deliver_dossier", old_dossier)
    assert status == 201 and before["delivered_to"] == old, before
    assert before["id"] in _dossier_ids(stores, OLD)
    # The transfer: the merged province's system; a repeat changes nothing.
    status, switched = call("register_provider", {"province": NEW, "endpoint": new})
    assert (status, switched["previous"], switched["changed"]) == (200, old, True)
    assert call("register_provider", {"province": NEW, "endpoint": new})[1]["changed"] is False
    assert call("provider", {"province": NEW})[1]["endpoint"] == new
    status, after = call("deliver_dossier", new_dossier)
    assert status == 201 and after["delivered_to"] == new
    assert after["id"] in _dossier_ids(stores, NEW)
    assert after["id"] not in _dossier_ids(stores, OLD)
    # The rollback: the old endpoint again; the next dossier lands there.
    assert call("register_provider", {"province": NEW, "endpoint": old})[1]["previous"] == new
    status, back = call("deliver_dossier", old_dossier)
    assert status == 201 and back["delivered_to"] == old
    assert back["id"] in _dossier_ids(stores, OLD) and back["id"] not in _dossier_ids(stores, NEW)
    # Synthetic dossiers are withdrawn where they landed.
    for base, d in ((old, before), (new, after), (old, back)):
        assert _http("DELETE", f"{base}/api/dossiers/{d['id']}")[0] == 200
    assert call("register_provider", {"province": NEW, "endpoint": "file:///etc"})[0] == 400
    # A province never registered before the transfer rolls back to none registered.
    assert call("unregister_provider", {"province": NEW})[1]["unregistered"] is True
    assert call("unregister_provider", {"province": NEW})[1]["unregistered"] is False
    assert call("provider", {"province": NEW})[0] == 404


def test_a_dead_new_system_fails_the_delivery(standins: StandinEstate, tmp_path: Path) -> None:
    """The synthetic transaction fails (502) while the registered system is down: the
    transfer's verification cannot pass, and the engine rolls the province back."""
    ndxp = standins.url("national-ndxp")
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    assert _http("PUT", f"{ndxp}/api/providers/{OLD}", {"endpoint": dead})[0] == 200
    commune = provinces()[OLD].communes[0].code_str
    status, answer = _http(
        "POST",
        f"{ndxp}/api/providers/{OLD}/dossiers",
        {"commune_code": commune, "procedure_code": "1.001", "applicant": SYNTHETIC},
    )
    assert status == 502, answer
