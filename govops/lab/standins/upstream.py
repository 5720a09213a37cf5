"""Outbound calls to counterparts, on aiohttp's client.

Handlers run in worker threads (their state store is synchronous); the client's session lives
on the stand-in's event loop, so `call` hands the request to the loop and waits for the answer.
Redirects are answers to relay, never followed; TLS is verified against `ca_file` when it exists.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from .core import UpstreamUnavailable


@dataclass(frozen=True)
class Upstream:
    status: int
    headers: Mapping[str, str]  # case-insensitive names
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class Client:
    """Outbound calls to counterparts; usable from any thread but the loop's own."""

    def __init__(self, ca_file: str | None, timeout: float, log: Callable[..., None]) -> None:
        context = ssl.create_default_context()
        if ca_file and Path(ca_file).exists():
            context = ssl.create_default_context(cafile=ca_file)
        elif ca_file:
            log("ca_file_missing", level="warning", ca_file=ca_file)
        self.ssl, self.timeout, self.log = context, timeout, log
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: int | None = None
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the session on the running loop (connections kept alive per counterpart)."""
        self.loop, self.loop_thread = asyncio.get_running_loop(), threading.get_ident()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def call(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Upstream:
        if self.loop is None or threading.get_ident() == self.loop_thread:
            raise RuntimeError("Client.call: from a worker thread of a started stand-in only")
        headers = dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        shown = url.split("?", 1)[0]  # query strings may carry codes: never logged
        sending = self._send(method, url, data, headers)
        try:
            result = asyncio.run_coroutine_threadsafe(sending, self.loop).result()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = _reason(exc)
            self.log(
                "upstream_unavailable", level="warning", method=method, url=shown, reason=reason
            )
            raise UpstreamUnavailable(shown, reason) from exc
        self.log("upstream_call", method=method, url=shown, status=result.status)
        return result

    async def _send(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str]
    ) -> Upstream:
        assert self.session is not None
        async with self.session.request(
            method, url, data=data, headers=headers, allow_redirects=False
        ) as resp:
            return Upstream(resp.status, resp.headers, await resp.read())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]
