"""Stand-in shell: routing, request parsing, fault validation, dispatch (SQLite, no sockets)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from govops.lab.standins.app import App, parse_fault
from govops.lab.standins.config import parse_config
from govops.lab.standins.core import NOTICE, HTTPError, Logger, now_iso, parse_iso
from govops.lab.standins.reporting import PERIOD, check_indicators
from govops.lab.standins.web import Request, Router


def test_router_matches_params_rest_and_says_404_or_405() -> None:
    router = Router()
    router.add("GET", "/api/dossiers/{id}", lambda req: (200, "one"))
    router.add("GET|POST", "/gw/{route}/{path:rest}", lambda req: (200, "relay"))
    _, params = router.match("GET", "/api/dossiers/hs-1%2F2")
    assert params == {"id": "hs-1/2"}
    _, params = router.match("POST", "/gw/portal/api/provinces/hue/notifications")
    assert params == {"route": "portal", "path": "api/provinces/hue/notifications"}
    with pytest.raises(HTTPError) as err:
        router.match("DELETE", "/api/dossiers/x")
    assert err.value.status == 405
    with pytest.raises(HTTPError) as err:
        router.match("GET", "/api/dossiers/x/y")
    assert err.value.status == 404


def test_request_parses_json_form_and_query() -> None:
    req = Request("POST", "/x", "a=1&b=%C4%91", {"content-type": "application/json"}, b'{"k": 1}')
    assert req.query == {"a": "1", "b": "đ"} and req.json() == {"k": 1}
    assert req.form() == {"k": "1"}
    assert Request("POST", "/", body=b"code=x&state=y").form() == {"code": "x", "state": "y"}
    for bad in (b"[1]", b"{nope"):
        with pytest.raises(HTTPError) as err:
            Request("POST", "/", body=bad).json()
        assert err.value.status == 400


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"mode": "down"}, True),
        ({"mode": "error", "delay_seconds": 3}, True),
        ({"mode": "slow", "delay_seconds": 2.5}, True),
        ({"mode": "slow"}, False),
        ({"mode": "slow", "delay_seconds": 0}, False),
        ({"mode": "slow", "delay_seconds": True}, False),
        ({"mode": "refuse_commune", "commune": "19900"}, True),
        ({"mode": "refuse_commune", "commune": "hue"}, False),
        ({"mode": "explode"}, False),
    ],
)
def test_fault_bodies_are_validated(body: dict[str, Any], ok: bool) -> None:
    if ok:
        assert parse_fault(body)["mode"] == body["mode"]
    else:
        with pytest.raises(HTTPError):
            parse_fault(body)


def test_period_and_indicators() -> None:
    assert all(PERIOD.match(p) for p in ("2025", "2025-06", "2025-06-28", "2025-Q2"))
    assert not any(PERIOD.match(p) for p in ("June", "2025-13", "2025-Q5", "25-06"))
    assert check_indicators({"a": 1, "b": 0.5}) == {"a": 1, "b": 0.5}
    for bad in ({}, {"a": "1"}, {"a": True}, [1]):
        with pytest.raises(HTTPError):
            check_indicators(bad)


def test_timestamps_are_fixed_width_and_round_trip() -> None:
    assert now_iso(0) == "1970-01-01T00:00:00.000000Z"
    assert parse_iso(now_iso(1751097600.25)) == 1751097600.25
    assert len(now_iso(1)) == len(now_iso(4_000_000_000))


def test_dispatch_faults_and_persistence_on_sqlite(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    config = parse_config(
        {
            "kind": "national-ndxp",
            "listen": "127.0.0.1:0",
            "state_path": str(tmp_path / "state.sqlite3"),
            "fault_token_file": str(tmp_path / "token"),
        }
    )
    log = io.StringIO()
    app = App(config, Logger(log))
    app.start()

    def handle(method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"x-fault-token": token} if token else {}
        resp = app.handle(
            Request(
                method, path, "", headers, json.dumps(body).encode() if body is not None else b""
            )
        )
        assert resp.headers["X-Standin"] == NOTICE
        return resp.status, json.loads(resp.body)

    assert handle("GET", "/version")[1]["standin"] is True
    status, body = handle("POST", "/api/exchange/population", {"n": 1})
    assert status == 200 and body["receipt"]["dataset"] == "population"
    assert handle("PUT", "/_faults", {"mode": "down"}, token="bad")[0] == 401
    assert handle("PUT", "/_faults", {"mode": "down"}, token="tok")[0] == 200
    assert handle("GET", "/api/ping")[0] == 503
    app.close()

    again = App(config, Logger(io.StringIO()))  # a restart keeps the fault
    again.start()
    assert again.faults.current() is not None
    status = again.handle(Request("GET", "/healthz")).status
    assert status == 503
    again.close()
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert {"started", "request", "fault_set"} <= {line["event"] for line in lines}
    assert "tok" not in {str(v) for line in lines for v in line.values()}
