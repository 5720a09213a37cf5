"""Go-live on the stand-ins, run locally: the national portal's register of which procedures
system serves which commune points at the merged province's system, the systems leave trial
mode, and a dossier submitted through the national portal lands in the new system — and in the
old one again after rollback (real PostgreSQL, plain HTTP, no lab)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.postgres import PostgresServer, free_port
from tests.integration.test_standins import COMMUNES, PROVINCE, SSO_SECRET, Lab, call

APPLICANT = {"name": "Nguyễn Văn A", "synthetic": True}


@pytest.fixture(scope="module")
def golive(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The portal, the merged province's procedures system and the old province's one."""
    tmp = tmp_path_factory.mktemp("golive")
    (tmp / "sso-secret").write_text(SSO_SECRET + "\n")
    (tmp / "fault-token").write_text("golive-fault-token\n")
    lab = Lab(postgres, tmp)
    kinds = ("national-portal", "national-docaxis", "national-ndxp", "national-reporting")
    ports = {k: free_port() for k in (*kinds, "procedures", "lgsp", "old-procedures")}
    lab.urls = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
    try:
        lab.start("national-portal", lab.config("national-portal", ports["national-portal"]))
        lab.start("procedures", lab.config("procedures", ports["procedures"]))
        old = lab.config("procedures", ports["old-procedures"])  # its own database
        old["sso"]["redirect_uri"] = f"{lab.urls['old-procedures']}/sso/callback"
        lab.start("old-procedures", old)
        yield lab
    finally:
        lab.stop()


def submit(lab: Lab, commune: str) -> tuple[int, Any]:
    status, body, _ = call(
        "POST",
        f"{lab.urls['national-portal']}/api/dossiers",
        {"commune_code": commune, "procedure_code": "GOLIVE-TEST", "applicant": APPLICANT},
    )
    return status, body


def lands_in(lab: Lab, dossier: str) -> list[str]:
    return [
        kind
        for kind in ("procedures", "old-procedures")
        if call("GET", f"{lab.urls[kind]}/api/dossiers/{dossier}")[0] == 200
    ]


def mode(lab: Lab, kind: str) -> tuple[str, str]:
    """The mode the API says and the trial-mode metric's value."""
    _, body, _ = call("GET", f"{lab.urls[kind]}/api/operation-mode")
    with urllib.request.urlopen(f"{lab.urls[kind]}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    line = next(x for x in text.splitlines() if x.startswith("govops_standin_trial_mode{"))
    return body["mode"], line.rsplit(" ", 1)[1]


def test_go_live_then_rollback_moves_where_dossiers_land(golive: Lab) -> None:
    portal, new, old = (golive.urls[k] for k in ("national-portal", "procedures", "old-procedures"))
    codes = [c["code"] for c in COMMUNES]
    commune = codes[0]

    # before the cutover the commune is unknown to the register: the portal refuses, clearly
    status, body = submit(golive, commune)
    assert status == 404 and body["error"] == "not_registered"

    # the old province's system serves the province's communes (registered by hand)
    for code in codes[:3]:
        status, body, _ = call(
            "PUT", f"{portal}/api/communes/{code}/system", {"province": PROVINCE, "procedures": old}
        )
        assert status == 200 and body["procedures"] == old
    status, body = submit(golive, commune)
    assert status == 201 and body["routed_to"] == old
    assert lands_in(golive, body["id"]) == ["old-procedures"]
    assert mode(golive, "procedures") == ("trial", "1")

    # go-live: the systems leave trial mode; the register points at the new system
    status, body, _ = call("PUT", f"{new}/api/operation-mode", {"mode": "official"})
    assert status == 200 and body["trial_mode"] is False
    status, body, _ = call(
        "POST", f"{portal}/api/provinces/{PROVINCE}/commune-systems/go-live", {"communes": COMMUNES}
    )
    assert status == 200 and body["commune_count"] == len(codes) and body["procedures"] == new
    again = call(
        "POST", f"{portal}/api/provinces/{PROVINCE}/commune-systems/go-live", {"communes": codes}
    )[1]
    assert again["changed"] == 0 and again["commune_count"] == len(codes)  # idempotent
    assert mode(golive, "procedures") == ("official", "0")
    status, body = submit(golive, commune)
    assert status == 201 and body["routed_to"] == new and body["province"] == PROVINCE
    assert lands_in(golive, body["id"]) == ["procedures"]

    # rollback: back to the old system where there was one; the others leave the register
    for _ in range(2):  # idempotent
        status, body, _ = call(
            "POST", f"{portal}/api/provinces/{PROVINCE}/commune-systems/rollback", {}
        )
        assert status == 200 and body["commune_count"] == 0
    call("PUT", f"{new}/api/operation-mode", {"mode": "trial"})
    assert mode(golive, "procedures") == ("trial", "1")
    status, body = submit(golive, commune)
    assert status == 201 and body["routed_to"] == old
    assert lands_in(golive, body["id"]) == ["old-procedures"]
    assert call("GET", f"{portal}/api/communes/{codes[5]}/system")[0] == 404


def test_the_register_refuses_nonsense(golive: Lab) -> None:
    portal = golive.urls["national-portal"]
    go_live = f"{portal}/api/provinces/{PROVINCE}/commune-systems/go-live"
    assert call("POST", go_live, {"communes": ["12"]})[0] == 400
    assert call("POST", go_live, {"communes": []})[0] == 400
    status, body, _ = call(
        "POST", f"{portal}/api/provinces/nowhere/commune-systems/go-live", {"communes": ["19900"]}
    )
    assert status == 422 and body["error"] == "unknown_province"
    assert (
        call("PUT", f"{golive.urls['procedures']}/api/operation-mode", {"mode": "live"})[0] == 400
    )


def test_a_dossier_to_a_system_that_is_down_is_a_clear_502(golive: Lab) -> None:
    portal = golive.urls["national-portal"]
    dead = f"http://127.0.0.1:{free_port()}"
    call("PUT", f"{portal}/api/communes/99999/system", {"province": PROVINCE, "procedures": dead})
    status, body = submit(golive, "99999")
    assert status == 502 and body["error"] == "procedures_unavailable" and body["url"] == dead
