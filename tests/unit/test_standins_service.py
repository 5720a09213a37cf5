"""The stand-ins' shell on aiohttp: routing, requests, faults, errors, logs, outbound calls.

Real stand-ins on loopback ports with SQLite state (no PostgreSQL needed): national-ndxp, and an
LGSP whose routes lead to it (the path-rest pattern, the outbound client) or to a closed port.
"""

from __future__ import annotations

import ast
import io
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govops.lab.standins.app import Running, start
from govops.lab.standins.config import parse_config
from govops.lab.standins.core import NOTICE, HTTPError, Logger, now_iso, parse_iso
from govops.lab.standins.faults import parse_fault
from govops.lab.standins.reporting import PERIOD, check_indicators
from govops.lab.standins.service import MAX_BODY, Request

STANDINS = Path(__file__).resolve().parents[2] / "govops/lab/standins"
TOKEN = "tok-123"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(tmp_path: Path, kind: str, log: io.StringIO, **extra: Any) -> Running:
    (tmp_path / "token").write_text(f"{TOKEN}\n")
    data = {
        "kind": kind,
        "listen": "127.0.0.1:0",
        "state_path": str(tmp_path / f"{kind}.sqlite3"),
        "fault_token_file": str(tmp_path / "token"),
        **extra,
    }
    return start(parse_config(data, f"<{kind}>"), Logger(log, kind=kind))


def call(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers.items())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers.items())


def jcall(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **({"X-Fault-Token": token} if token else {})}
    data = None if body is None else json.dumps(body).encode()
    status, raw, hdrs = call(method, url, data, headers)
    assert hdrs["X-Standin"] == NOTICE  # every answer, errors included
    return status, json.loads(raw) if raw else None


@pytest.fixture
def ndxp(tmp_path: Path) -> Iterator[tuple[Running, io.StringIO]]:
    log = io.StringIO()
    running = run(tmp_path, "national-ndxp", log)
    yield running, log
    running.stop()


def test_routes_decode_params_and_answer_404_and_405_as_json(
    ndxp: tuple[Running, io.StringIO],
) -> None:
    url = ndxp[0].url
    status, body = jcall("POST", f"{url}/api/exchange/pop%2Fulation", {"n": 1})
    assert status == 200 and body["receipt"]["dataset"] == "pop/ulation"
    assert jcall("GET", f"{url}/api/exchange/x") == (
        405,
        {"error": "method_not_allowed", "detail": "allowed: POST"},
    )
    assert jcall("GET", f"{url}/api/ping/more") == (
        404,
        {"error": "not_found", "detail": "/api/ping/more"},
    )
    endpoints = jcall("GET", f"{url}/")[1]["endpoints"]
    assert endpoints[:4] == ["GET /", "GET /healthz", "GET /readyz", "GET /version"]
    assert "POST /api/exchange/{dataset}" in endpoints


def test_head_is_get_without_a_body_and_bodies_are_bounded(
    ndxp: tuple[Running, io.StringIO],
) -> None:
    url = ndxp[0].url
    status, raw, headers = call("HEAD", f"{url}/version")
    assert status == 200 and raw == b"" and int(headers["Content-Length"]) > 0
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    status, raw, _ = call("POST", f"{url}/api/exchange/x", b"{nope", {"Content-Type": "a/json"})
    assert status == 400 and json.loads(raw)["error"] == "invalid_json"
    status, raw, _ = call("POST", f"{url}/api/exchange/x", b" " * (MAX_BODY + 1))
    assert status == 413 and json.loads(raw) == {"error": "body_too_large"}


def test_faults_apply_everywhere_but_the_switch_and_survive_a_restart(tmp_path: Path) -> None:
    log = io.StringIO()
    first = run(tmp_path, "national-ndxp", log)
    try:
        url = first.url
        assert jcall("GET", f"{url}/version")[1]["standin"] is True
        assert jcall("PUT", f"{url}/_faults", {"mode": "down"}, token="bad")[0] == 401
        assert jcall("POST", f"{url}/_faults", {}, token=TOKEN) == (
            405,
            {"error": "method_not_allowed", "detail": "allowed: DELETE, GET, PUT"},
        )
        assert jcall("PUT", f"{url}/_faults", {"mode": "down"}, token=TOKEN)[0] == 200
        for path in ("/api/ping", "/healthz", "/no/such/path"):
            assert jcall("GET", f"{url}{path}") == (
                503,
                {"error": "fault_down", "detail": "fault injected: down"},
            )
    finally:
        first.stop()
    with pytest.raises(OSError):  # stopped: the port refuses
        urllib.request.urlopen(f"{url}/healthz", timeout=2)
    again = run(tmp_path, "national-ndxp", io.StringIO())  # a restart keeps the fault
    try:
        assert jcall("GET", f"{again.url}/healthz")[0] == 503
        assert jcall("DELETE", f"{again.url}/_faults", token=TOKEN) == (200, {"fault": None})
        assert jcall("GET", f"{again.url}/healthz") == (200, {"status": "ok", "standin": True})
    finally:
        again.stop()
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert {"started", "request", "fault_set"} <= {line["event"] for line in lines}
    requests = [line for line in lines if line["event"] == "request"]
    assert {"method", "path", "status", "duration_ms", "kind"} <= set(requests[0])
    assert TOKEN not in log.getvalue()


def test_gateway_relays_through_the_client_and_names_an_unreachable_upstream(
    tmp_path: Path, ndxp: tuple[Running, io.StringIO]
) -> None:
    log = io.StringIO()
    lgsp = run(
        tmp_path,
        "lgsp",
        log,
        province="hue",
        counterparts={"ndxp": ndxp[0].url, "gone": f"http://127.0.0.1:{closed_port()}"},
    )
    try:
        status, raw, headers = call(
            "POST",
            f"{lgsp.url}/gw/ndxp/api/exchange/population?x=1",
            b'{"n": 1}',
            {"Content-Type": "application/json"},
        )
        assert status == 200 and json.loads(raw)["echo"] == {"n": 1}
        assert headers["X-LGSP-Route"] == "ndxp"
        status, body = jcall("GET", f"{lgsp.url}/gw/gone/api/ping?code=secret")
        assert status == 502 and body["error"] == "upstream_unavailable"
        assert body["url"].endswith("/api/ping")  # no query string: it may carry codes
    finally:
        lgsp.stop()
    events = [json.loads(line) for line in log.getvalue().splitlines()]
    assert {"upstream_call", "upstream_unavailable"} <= {e["event"] for e in events}
    assert "secret" not in log.getvalue()


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


def _imports(module: Path) -> set[str]:
    """The sibling modules a stand-in module imports (relative imports only)."""
    names = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names |= {node.module} if node.module else {a.name for a in node.names}
    return names


def test_the_base_knows_nothing_of_the_application() -> None:
    graph = {p.stem: _imports(p) for p in STANDINS.glob("*.py")}
    assert graph["core"] == set(), "core is the base: it imports no stand-in module"
    assert {m for m, deps in graph.items() if "app" in deps} == {"__main__"}
    assert "web" not in graph, "the hand-written HTTP framework is gone"

    def reaches_from(node: str, target: str, seen: frozenset[str]) -> bool:
        return any(
            d == target or (d not in seen and reaches_from(d, target, seen | {d}))
            for d in graph.get(node, ())
            if d in graph
        )

    assert not [m for m in graph if reaches_from(m, m, frozenset())], "an import circle"
