"""The prober's HTTP: aiohttp's client, held to the prober's guarantees.

Why aiohttp: chosen by measurement against httpx (the two maintained asyncio clients, both in
Debian 12: python3-aiohttp 3.8, python3-httpx 0.23). Same targets (five loopback origins, a
fresh session per probe, five GETs a probe, 16 probes at a time), CPU of the probing process:
aiohttp 0.28-0.36 ms a request, httpx 1.0-1.3 ms (keep-alive, four requests an origin: 0.19 vs
0.82 ms). httpx alone would cost more CPU per probe than blackbox_exporter (0.89 ms); aiohttp
keeps the prober below it (bench/prober.py).

What the prober adds on top, and why:
- Deadlines: a probe ends when its deadline does. The caller bounds each check with
  `asyncio.timeout`; aiohttp's own timeouts are off, so cancellation is the one mechanism, and
  a cancelled request closes its connection at once — a target that accepts and never answers
  costs one timeout, never a stuck socket.
- Keep-alive per origin for one probe: one `ClientSession` (and connection pool) a probe, closed
  with it. TLS handshakes are the expensive part of a probe; connections never outlive it.
- TLS verified against the estate's CA (`tls_context`).
- Only origins named by the configuration are contacted: every request is checked against the
  allow-list, redirects are never followed by aiohttp, and `follow` checks each hop itself — a
  redirect off the estate is a failed check, not a hop.
- A kept-alive connection the server had closed before our request reached it is retried once
  on a fresh connection (the request never arrived, so even a POST is safe to send again).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp

MAX_BODY = 4 * 1024 * 1024
USER_AGENT = "govops-prober/0.1 (synthetic transaction; not a citizen)"
_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
# No timeout of aiohttp's own: the caller's deadline (asyncio.timeout) is the only one.
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)


class ProbeFailure(Exception):
    """A check's verdict: the transaction did not complete, and why (one line, for humans)."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # case-insensitive names
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


async def _mark_reused(session: aiohttp.ClientSession, ctx: SimpleNamespace, params: Any) -> None:
    ctx.trace_request_ctx.reused = True


# Tells a request whether it went out on a kept-alive connection (see `_request`'s retry).
_TRACE = aiohttp.TraceConfig()
_TRACE.on_connection_reuseconn.append(_mark_reused)  # type: ignore[arg-type]
_TRACE.freeze()


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
        self.requests = 0
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Session:
        # Pool sizes are the semaphores' business; the pool is per origin (host, port, TLS).
        connector = aiohttp.TCPConnector(ssl=self.ssl_context, limit=0, limit_per_host=0)
        self.http = aiohttp.ClientSession(
            connector=connector,
            timeout=_NO_TIMEOUT,
            headers=_HEADERS,
            trace_configs=[_TRACE],
            trust_env=False,  # no proxy from the environment: the estate's origins, directly
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.http is not None:
            http, self.http = self.http, None
            await http.close()

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
        if self.http is None:
            raise RuntimeError("Session used outside `async with`")
        extra = dict(headers or {})
        data = None
        if json_body is not None or method in ("POST", "PUT"):
            data = b"" if json_body is None else json.dumps(json_body).encode()
            extra["Content-Type"] = "application/json"
        self.requests += 1
        for attempt in (1, 2):
            trace = SimpleNamespace(reused=False)
            try:
                async with self.http.request(
                    method,
                    url,
                    data=data,
                    headers=extra,
                    allow_redirects=False,
                    trace_request_ctx=trace,
                ) as resp:
                    body = await _read_body(resp)
                    return Reply(resp.status, resp.headers, body)
            except aiohttp.ServerDisconnectedError as exc:
                if attempt == 1 and trace.reused:
                    continue  # a kept-alive connection closed by the server: never reached it
                raise ProbeFailure(f"{method} {_shown(url)}: {_reason(exc)}") from exc
            except aiohttp.ClientConnectorError as exc:
                raise ProbeFailure(f"connect {exc.host}:{exc.port}: {_reason(exc)}") from exc
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                raise ProbeFailure(f"{method} {_shown(url)}: {_reason(exc)}") from exc
        raise AssertionError("unreachable")

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


async def _read_body(resp: aiohttp.ClientResponse) -> bytes:
    """The body, refused beyond MAX_BODY (whatever the framing: length, chunked, until close)."""
    if (resp.content_length or 0) > MAX_BODY:
        raise ValueError("body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY:
            raise ValueError("body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _shown(url: str) -> str:
    """A URL without its query: query strings may carry codes and tokens."""
    return url.split("?", 1)[0]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        message = getattr(cert, "verify_message", None) or str(cert)
        return f"TLS certificate not trusted: {message}"[:200]
    if isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verify servers against the estate's CA (or the system's store when none is given)."""
    context = (
        ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
