"""The prober ends when its deadline does, and probes only the estate.

A black-holed target (a socket that accepts and never answers) must never push a scrape past
its timeout; a request naming anything but a province of the estate is refused with 400 before
any connection is made; a redirect off the estate is a failed check, not a hop.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from exporters.govops_prober.checks import MODULES
from exporters.govops_prober.client import ProbeFailure, Session
from exporters.govops_prober.config import SYSTEMS, ProberConfig, ProvinceTarget
from exporters.govops_prober.from_estate import adapter_operations
from exporters.govops_prober.prober import Prober
from exporters.govops_prober.server import Exporter, serve
from govops.registry import load_estate

from .conftest import ROOT


class RawServer:
    """A loopback TCP server whose every connection is handed to `handle` in a thread."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.handle = handle
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def black_hole(conn: socket.socket) -> None:
    """Accept, then say nothing, ever (the connection stays open until the test ends)."""


@pytest.fixture
def hole() -> Iterator[RawServer]:
    server = RawServer(black_hole)
    yield server
    server.close()


def config_for(url: str, **options: float) -> ProberConfig:
    target = ProvinceTarget(
        codename="hue",
        systems=dict.fromkeys(SYSTEMS, url),
        communes=tuple(f"{19768 + i}" for i in range(40)),
        agency_from="000.01.00.H46",
        agency_to="000.00.00.H46",
    )
    counterparts = dict.fromkeys(("portal", "sso", "payment", "docaxis", "ndxp", "reporting"), url)
    return ProberConfig(
        environment="test",
        provinces={"hue": target},
        counterparts=counterparts,
        commune_period_seconds=60.0,
        # The lab's adapters: the checks' operations resolve as in the lab.
        operations=adapter_operations(load_estate(ROOT / "inventories/lab/estate.yml")),
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_black_hole_never_outlasts_the_scrape_timeout(hole: RawServer, scheme: str) -> None:
    prober = Prober(config_for(f"{scheme}://127.0.0.1:{hole.port}"))
    exporter = Exporter(prober)
    try:
        started = time.perf_counter()
        status, _, body = exporter.probe({"target": ["hue"], "module": ["all"]}, "2")
        took = time.perf_counter() - started
    finally:
        prober.close()
    assert status == 200
    assert took < 1.5 + 0.3, f"scrape took {took:.2f}s with a 1.5s budget"
    text = body.decode()
    assert 'govops_probe_success{check="sso_login",province="hue",system="procedures"} 0.0' in text
    assert 'govops_up{province="hue"} 1.0' in text  # the prober did its job: the target failed
    assert hole.accepted > 0


def test_check_timeout_bounds_each_check(hole: RawServer) -> None:
    prober = Prober(config_for(f"http://127.0.0.1:{hole.port}", check_timeout_seconds=0.3))
    try:
        result = prober.run("hue", "fronts", timeout=5)
    finally:
        prober.close()
    assert result.duration < 0.3 + 0.2
    assert all(not c.ok and "no complete answer within 0.3s" in c.detail for c in result.checks)


def test_black_hole_over_real_http_scrape(hole: RawServer) -> None:
    prober = Prober(config_for(f"http://127.0.0.1:{hole.port}"))
    server, thread = serve(Exporter(prober), "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/probe?target=hue&module=all",
            headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"},
        )
        started = time.perf_counter()
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read().decode()
        took = time.perf_counter() - started
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        prober.close()
    assert took < 1.0 + 0.3
    assert "govops_scrape_duration_seconds" in body


@pytest.mark.parametrize(
    "query",
    [
        "",
        "target=",
        "target=atlantis",
        "target=http://127.0.0.1:22/",
        "target=127.0.0.1:22",
        "target=hue.example.org",
        "target=HUE",
        "target=hue%0d%0aX-Injected:%201",
        "target=hue&module=http_2xx",
    ],
)
def test_anything_but_an_estate_province_is_refused(hole: RawServer, query: str) -> None:
    prober = Prober(config_for(f"http://127.0.0.1:{hole.port}"))
    server, thread = serve(Exporter(prober), "127.0.0.1", 0)
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/probe?{query}")
        assert err.value.code == 400
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        prober.close()
    assert hole.accepted == 0, "a refused request must not reach any target"


def _answer(raw: bytes) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(raw)
        conn.close()

    return handle


def test_redirect_off_the_estate_is_a_failure_not_a_hop() -> None:
    elsewhere = RawServer(_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
    redirect = RawServer(
        _answer(
            f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{elsewhere.port}/x\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
    )
    prober = Prober(config_for(f"http://127.0.0.1:{redirect.port}"))
    try:
        result = prober.run("hue", "sso_login", timeout=5)
    finally:
        prober.close()
        redirect.close()
        elsewhere.close()
    (check,) = result.checks
    assert not check.ok
    assert "not an endpoint of the estate" in check.detail
    assert elsewhere.accepted == 0


def test_chunked_and_close_delimited_bodies() -> None:
    chunked = RawServer(
        _answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
        )
    )
    until_close = RawServer(_answer(b'HTTP/1.0 200 OK\r\n\r\n{"b": 2}'))

    async def go() -> tuple[object, object]:
        origins = frozenset(f"http://127.0.0.1:{s.port}" for s in (chunked, until_close))
        async with Session(ssl.create_default_context(), origins) as session:
            a = await session.request("GET", f"http://127.0.0.1:{chunked.port}/")
            b = await session.request("GET", f"http://127.0.0.1:{until_close.port}/")
            return a.json(), b.json()

    try:
        assert asyncio.run(go()) == ({"a": 1}, {"b": 2})
    finally:
        chunked.close()
        until_close.close()


def test_refused_connection_is_a_quick_clear_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    prober = Prober(replace(config_for(f"http://127.0.0.1:{port}")))
    try:
        result = prober.run("hue", "fronts", timeout=5)
    finally:
        prober.close()
    assert result.duration < 1
    assert all("connect 127.0.0.1" in c.detail for c in result.checks)


def test_every_module_has_checks_of_known_systems() -> None:
    assert set(MODULES) >= {"all", "fronts", "sso_login", "dossier_submit"}
    for checks in MODULES.values():
        assert checks and all(c.system in SYSTEMS for c in checks)
    assert {c.system for c in MODULES["all"]} == set(SYSTEMS)


def test_probe_failure_is_one_line() -> None:
    assert "\n" not in str(ProbeFailure("x"))
