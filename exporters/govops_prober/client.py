"""A small asyncio HTTP/1.1 client for synthetic transactions.

Why not urllib or http.client: a probe must end when its deadline does. With asyncio, a
cancelled check closes its sockets at once, so a target that accepts and never answers costs
one timeout, never a stuck thread. Connections are kept alive per origin for the length of one
probe (TLS handshakes are the expensive part of a probe), and only origins named by the
prober's configuration are ever contacted: a redirect elsewhere is a failed check, not a hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_BODY = 4 * 1024 * 1024
MAX_HEADER_LINES = 100
USER_AGENT = "govops-prober/0.1 (synthetic transaction; not a citizen)"


class ProbeFailure(Exception):
    """A check's verdict: the transaction did not complete, and why (one line, for humans)."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def object(self) -> dict[str, Any]:
        """The body as a JSON object, or a failure naming what came instead."""
        data = self.json()
        if not isinstance(data, dict):
            raise ProbeFailure(f"HTTP {self.status}: expected a JSON object")
        return data


def origin_of(url: str) -> str:
    """`scheme://host:port`, with the default port made explicit (the allow-list's key)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeFailure(f"not an http(s) URL: {url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


@dataclass(eq=False)  # identity, not value: connections live in a set
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def abort(self) -> None:
        # abort(), not close(): no graceful TLS shutdown to wait for on a dead peer.
        transport = self.writer.transport
        if transport is not None:
            transport.abort()


class Session:
    """One probe's HTTP: keep-alive per origin, allow-listed origins, everything closed at end."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        allowed_origins: frozenset[str],
        limits: Sequence[asyncio.Semaphore] = (),
    ) -> None:
        self.ssl_context = ssl_context
        self.allowed = allowed_origins
        # Requests in flight are bounded across all probes and within this one: the prober
        # must not become the load that takes a province's systems down.
        self.limits = tuple(limits)
        self.idle: dict[str, list[_Conn]] = {}
        self.busy: set[_Conn] = set()
        self.requests = 0

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for conns in self.idle.values():
            for conn in conns:
                conn.abort()
        for conn in self.busy:
            conn.abort()
        self.idle.clear()
        self.busy.clear()

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        held: list[asyncio.Semaphore] = []
        try:
            for limit in self.limits:
                await limit.acquire()
                held.append(limit)
            return await self._request(method, url, json_body, headers)
        finally:
            for limit in held:
                limit.release()

    async def _request(
        self, method: str, url: str, json_body: Any, headers: Mapping[str, str] | None
    ) -> Reply:
        origin = origin_of(url)
        if origin not in self.allowed:
            raise ProbeFailure(f"refused to contact {origin}: not an endpoint of the estate")
        parts = urllib.parse.urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = b"" if json_body is None else json.dumps(json_body).encode()
        lines = [
            f"{method} {target} HTTP/1.1",
            f"Host: {parts.netloc}",
            f"User-Agent: {USER_AGENT}",
            "Accept: application/json",
        ]
        if json_body is not None or method in ("POST", "PUT"):
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        self.requests += 1
        reused, conn = self._take(origin)
        if conn is None:
            conn = await self._connect(parts)
        self.busy.add(conn)
        try:
            try:
                reply, keep = await self._exchange(conn, raw, method)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                if not reused:
                    raise ProbeFailure(f"{method} {_shown(url)}: {_reason(exc)}") from exc
                # A kept-alive connection the server had already closed: the request never
                # reached it, so sending it once more on a fresh connection is safe.
                conn.abort()
                self.busy.discard(conn)
                conn = await self._connect(parts)
                self.busy.add(conn)
                reply, keep = await self._exchange(conn, raw, method)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            conn.abort()
            self.busy.discard(conn)
            raise ProbeFailure(f"{method} {_shown(url)}: {_reason(exc)}") from exc
        self.busy.discard(conn)
        if keep:
            self.idle.setdefault(origin, []).append(conn)
        else:
            conn.abort()
        return reply

    async def follow(self, url: str, *, max_hops: int = 5) -> tuple[Reply, list[str]]:
        """GET, following redirects (each hop allow-listed); the final reply and the hops."""
        hops = [url]
        for _ in range(max_hops + 1):
            reply = await self.request("GET", url)
            location = reply.headers.get("location")
            if reply.status not in (301, 302, 303, 307, 308) or not location:
                return reply, hops
            url = urllib.parse.urljoin(url, location)
            hops.append(url)
        raise ProbeFailure(f"more than {max_hops} redirects from {_shown(hops[0])}")

    def _take(self, origin: str) -> tuple[bool, _Conn | None]:
        conns = self.idle.get(origin)
        if conns:
            return True, conns.pop()
        return False, None

    async def _connect(self, parts: urllib.parse.SplitResult) -> _Conn:
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        tls = self.ssl_context if parts.scheme == "https" else None
        try:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls else None, limit=MAX_BODY
            )
        except (OSError, ssl.SSLError) as exc:
            raise ProbeFailure(f"connect {host}:{port}: {_reason(exc)}") from exc
        return _Conn(reader, writer)

    async def _exchange(self, conn: _Conn, raw: bytes, method: str) -> tuple[Reply, bool]:
        conn.writer.write(raw)
        await conn.writer.drain()
        status_line = await conn.reader.readline()
        if not status_line:
            raise ConnectionResetError("connection closed before the status line")
        version, status, _ = _parse_status(status_line)
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADER_LINES):
            line = await conn.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise ValueError("too many header lines")
        body = await _read_body(conn.reader, headers, status, method)
        connection = headers.get("connection", "").lower()
        keep = (
            version == "HTTP/1.1"
            and connection != "close"
            and ("content-length" in headers or "chunked" in headers.get("transfer-encoding", ""))
        )
        return Reply(status, headers, body), keep


def _parse_status(line: bytes) -> tuple[str, int, str]:
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {line[:60]!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


async def _read_body(
    reader: asyncio.StreamReader, headers: Mapping[str, str], status: int, method: str
) -> bytes:
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        size = 0
        while True:
            line = await reader.readline()
            length = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if length == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            size += length
            if size > MAX_BODY:
                raise ValueError("body too large")
            chunks.append(await reader.readexactly(length))
            await reader.readline()
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length > MAX_BODY:
            raise ValueError("body too large")
        return await reader.readexactly(length)
    data = await reader.read(MAX_BODY + 1)  # HTTP/1.0 style: the body ends with the stream
    while data and len(data) <= MAX_BODY:
        more = await reader.read(MAX_BODY + 1 - len(data))
        if not more:
            break
        data += more
    if len(data) > MAX_BODY:
        raise ValueError("body too large")
    return data


def _shown(url: str) -> str:
    """A URL without its query: query strings may carry codes and tokens."""
    return url.split("?", 1)[0]


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        text = f"TLS certificate not trusted: {exc.verify_message}"
    return text.splitlines()[0][:200]


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verify servers against the estate's CA (or the system's store when none is given)."""
    context = (
        ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    )
    with contextlib.suppress(AttributeError):
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
