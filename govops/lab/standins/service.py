"""What a kind of stand-in is written against: its request, its answers, its routes, its base.

Handlers are plain functions run in the stand-in's worker threads (the state stores are
synchronous): they get a `Request` whose body is already read, and return `(status, payload)`
for a JSON answer or an aiohttp `web.Response`. Routing, parsing and serving are aiohttp's
(the shell in app.py); nothing here knows the application.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from .config import Config
from .core import HTTPError
from .db import Database
from .upstream import Client

MAX_BODY = 8 * 1024 * 1024
REQUEST = "govops.standin.request"  # where the shell leaves the read request for the route


@dataclass
class Request:
    """One request as a handler sees it (`params`: the route's {names}, percent-decoded)."""

    method: str
    path: str  # as sent, without the query string
    raw_query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive from aiohttp
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def read(cls, request: web.Request) -> Request:
        return cls(
            request.method,
            request.rel_url.raw_path,
            request.query_string,
            request.headers,
            await request.read(),  # aiohttp refuses more than MAX_BODY with 413
            dict(request.match_info),
        )

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.raw_query).items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name) or self.headers.get(name.lower())

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise HTTPError(400, "invalid_json", str(exc)) from exc
        if not isinstance(data, dict):
            raise HTTPError(400, "invalid_json", "expected a JSON object")
        return data

    def form(self) -> dict[str, str]:
        """application/x-www-form-urlencoded (OAuth style) or a JSON object."""
        if (self.header("content-type") or "").startswith("application/json"):
            return {k: str(v) for k, v in self.json().items()}
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = json.dumps(payload, ensure_ascii=False, default=str).encode()
    return web.Response(
        status=status,
        body=body,
        content_type="application/json",
        charset="utf-8",
        headers=dict(headers or {}),
    )


def redirect(location: str) -> web.Response:
    return json_response(302, {"location": location}, {"Location": location})


Result = web.Response | tuple[int, Any]
Handler = Callable[[Request], Result]
Runner = Callable[[Handler, Request], Awaitable[Result]]


def to_response(result: Result) -> web.Response:
    return result if isinstance(result, web.Response) else json_response(*result)


class Routes:
    """Puts handlers on aiohttp's router. Patterns are aiohttp's: `/api/dossiers/{id}`,
    `{path:.+}` for the rest of a path; `GET` routes answer `HEAD` too (without a body)."""

    def __init__(self, router: web.UrlDispatcher, run: Runner) -> None:
        self.router, self.run = router, run
        self.endpoints: list[str] = []  # "METHOD /pattern", in order (listed by GET /)

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        async def endpoint(request: web.Request) -> web.Response:
            req: Request = request[REQUEST]
            return to_response(await self.run(handler, req))

        for method in methods.split("|"):
            self.endpoints.append(f"{method} {pattern}")
            self.router.add_route(method, pattern, endpoint)
            if method == "GET":
                self.router.add_route("HEAD", pattern, endpoint)


class FaultView(Protocol):
    def refuses(self, commune_code: str) -> bool: ...


@dataclass(frozen=True)
class Env:
    """What the shell gives a kind: its configuration, store, client, log and fault switch."""

    config: Config
    db: Database
    client: Client
    log: Callable[..., None]
    faults: FaultView


class Service:
    """One kind of stand-in: its tables, its routes, optional background work."""

    schema: tuple[str, ...] = ()

    def __init__(self, env: Env) -> None:
        self.env = env
        self.cfg, self.db, self.client = env.config, env.db, env.client
        self.log, self.faults = env.log, env.faults

    def counterpart(self, name: str) -> str:
        url = self.cfg.counterparts.get(name)
        if not url:
            raise HTTPError(503, "counterpart_not_configured", f"counterparts.{name} is not set")
        return url.rstrip("/")

    def routes(self, r: Routes) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Background work, if any (called after the schema exists)."""

    def stop(self) -> None:
        """Stop background work."""
