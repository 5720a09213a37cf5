"""The prober's HTTP session on aiohttp keeps the prober's guarantees.

TLS verified against the estate's CA (and only it), keep-alive per origin for one probe and
no longer, a cancelled request closes its socket at once, a kept-alive connection closed by
the server is retried once on a fresh one (and only then), an oversized body is refused.
Real sockets on loopback, a real CA made with openssl.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exporters.govops_prober.client import MAX_BODY, ProbeFailure, Reply, Session, tls_context

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"ok": true}'


def _read_request(conn: socket.socket, pending: bytearray) -> bool:
    """Read one request head (GET/POST without body, or with Content-Length); False at EOF."""
    while b"\r\n\r\n" not in pending:
        data = conn.recv(65536)
        if not data:
            return False
        pending += data
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return False
        rest += data
    pending[:] = rest[length:]
    return True


class Server:
    """Loopback TCP (optionally TLS); each connection handled by `handle(conn, index)`."""

    def __init__(
        self,
        handle: Callable[[Server, socket.socket, int], None],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.tls, self.handle = tls, handle
        self.accepted = 0
        self.closed_by_peer = threading.Semaphore(0)  # released when the client closes one
        self.held: list[socket.socket] = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            index = self.accepted
            self.accepted += 1
            self.held.append(conn)
            threading.Thread(target=self._serve, args=(conn, index), daemon=True).start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
                self.held.append(conn)
            self.handle(self, conn, index)
        except (OSError, ssl.SSLError):
            pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def keep_alive(server: Server, conn: socket.socket, index: int) -> None:
    """Answer every request on the connection, then notice when the client closes it."""
    pending = bytearray()
    while _read_request(conn, pending):
        conn.sendall(OK)
    server.closed_by_peer.release()


def silent(server: Server, conn: socket.socket, index: int) -> None:
    """Accept, say nothing, and notice when the client gives up and closes."""
    while conn.recv(65536):
        pass
    server.closed_by_peer.release()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a certificate for 127.0.0.1 signed by it (openssl)."""
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=govops test CA")  # fmt: skip
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=front")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2",
            "-extfile", "ext.cnf")  # fmt: skip
    return d


def server_tls(pki: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    return context


@pytest.fixture
def front(pki: Path) -> Iterator[Server]:
    server = Server(keep_alive, server_tls(pki))
    yield server
    server.close()


def origin(server: Server, scheme: str = "https") -> str:
    return f"{scheme}://127.0.0.1:{server.port}"


def test_tls_is_verified_against_the_estate_ca_and_only_it(front: Server, pki: Path) -> None:
    async def get(context: ssl.SSLContext) -> Reply:
        async with Session(context, frozenset({origin(front)})) as session:
            return await session.request("GET", f"{origin(front)}/readyz")

    assert asyncio.run(get(tls_context(str(pki / "ca.pem")))).object() == {"ok": True}
    with pytest.raises(ProbeFailure, match="TLS certificate not trusted"):
        asyncio.run(get(tls_context(None)))  # the system's store does not know the lab CA


def test_connections_are_kept_alive_per_origin_for_one_probe_only(front: Server, pki: Path) -> None:
    plain = Server(keep_alive)
    origins = frozenset({origin(front), origin(plain, "http")})

    async def probe() -> list[int]:
        async with Session(tls_context(str(pki / "ca.pem")), origins) as session:
            statuses = []
            for _ in range(3):
                for o in sorted(origins):
                    statuses.append((await session.request("GET", f"{o}/x")).status)
            return statuses

    try:
        assert asyncio.run(probe()) == [200] * 6
        assert (front.accepted, plain.accepted) == (1, 1)  # one connection per origin
        # ... and none outlives the probe: both servers see theirs closed.
        assert front.closed_by_peer.acquire(timeout=5)
        assert plain.closed_by_peer.acquire(timeout=5)
    finally:
        plain.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_cancelled_request_closes_its_socket_at_once(scheme: str, pki: Path) -> None:
    hole = Server(silent, server_tls(pki) if scheme == "https" else None)

    o = origin(hole, scheme)

    async def probe() -> None:
        async with Session(tls_context(str(pki / "ca.pem")), frozenset({o})) as session:
            async with asyncio.timeout(0.3):
                await session.request("GET", f"{o}/readyz")

    try:
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            asyncio.run(probe())
        assert time.perf_counter() - started < 0.3 + 0.2
        assert hole.accepted == 1
        assert hole.closed_by_peer.acquire(timeout=1.0), "the socket stayed open after the timeout"
    finally:
        hole.close()


def test_a_kept_alive_connection_closed_by_the_server_is_retried_once() -> None:
    def first_answers_once(server: Server, conn: socket.socket, index: int) -> None:
        pending = bytearray()
        if index == 0:  # answer one request, then drop the connection under the next
            _read_request(conn, pending)
            conn.sendall(OK)
            _read_request(conn, pending)
            conn.close()
            return
        while _read_request(conn, pending):
            conn.sendall(OK)

    server = Server(first_answers_once)
    o = origin(server, "http")

    async def probe() -> tuple[int, int]:
        async with Session(ssl.create_default_context(), frozenset({o})) as session:
            a = await session.request("POST", f"{o}/api/dossiers", json_body={"n": 1})
            b = await session.request("POST", f"{o}/api/dossiers", json_body={"n": 2})
            return a.status, b.status

    try:
        assert asyncio.run(probe()) == (200, 200)
        assert server.accepted == 2
    finally:
        server.close()


def test_a_fresh_connection_closed_without_an_answer_is_a_failure_not_a_retry() -> None:
    def drop(server: Server, conn: socket.socket, index: int) -> None:
        _read_request(conn, bytearray())
        conn.close()

    server = Server(drop)
    o = origin(server, "http")

    async def probe() -> None:
        async with Session(ssl.create_default_context(), frozenset({o})) as session:
            await session.request("POST", f"{o}/api/dossiers", json_body={"n": 1})

    try:
        with pytest.raises(ProbeFailure, match=r"POST http://127\.0\.0\.1"):
            asyncio.run(probe())
        assert server.accepted == 1  # a POST that may have arrived is never sent twice
    finally:
        server.close()


def test_an_oversized_body_is_refused() -> None:
    def huge(server: Server, conn: socket.socket, index: int) -> None:
        _read_request(conn, bytearray())
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        with contextlib.suppress(OSError):  # the prober hangs up before the end
            for _ in range(MAX_BODY // len(chunk) + 2):
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.sendall(b"0\r\n\r\n")

    server = Server(huge)
    o = origin(server, "http")

    async def probe() -> None:
        async with Session(ssl.create_default_context(), frozenset({o})) as session:
            await session.request("GET", f"{o}/big")

    try:
        with pytest.raises(ProbeFailure, match="body too large"):
            asyncio.run(probe())
    finally:
        server.close()
