"""The application shell every kind shares: faults, health, version, errors, logs, serving.

aiohttp serves (its router, request parsing and server); this shell adds what every stand-in
answers the same way: the fault switch, `/`, `/healthz`, `/readyz`, `/version`, errors as JSON,
the `X-Standin` header and one log line per request. One event loop in one thread per stand-in;
handlers run in a pool of worker threads, since the state stores are synchronous.
"""

from __future__ import annotations

import asyncio
import hmac
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from . import __version__, documents, lgsp, meetings, national, portal, procedures, reporting
from .config import PROVINCIAL, Config
from .core import NOTICE, DatabaseUnavailable, HTTPError, Logger, UpstreamUnavailable
from .db import Database, open_database
from .faults import FAULT_SCHEMA, Faults, parse_fault
from .opmode import SCHEMA as MODE_SCHEMA
from .opmode import OperationMode
from .service import (
    MAX_BODY,
    REQUEST,
    Env,
    Request,
    Result,
    Routes,
    Service,
    json_response,
    to_response,
)
from .upstream import Client

KINDS: dict[str, type[Service]] = {
    "procedures": procedures.Procedures,
    "documents": documents.Documents,
    "lgsp": lgsp.Lgsp,
    "reporting": reporting.Reporting,
    "meetings": meetings.Meetings,
    "national-portal": portal.Portal,
    "national-docaxis": national.DocAxis,
    "national-ndxp": national.Ndxp,
    "national-reporting": national.NationalReporting,
}
# Handlers that wait on a counterpart hold a thread: room for the prober's concurrency (24 a
# province) and the runbooks' at once. A slow fault waits on the loop, not in a thread.
WORKERS = 64
# In-flight requests get this long to finish at stop (systemd's TimeoutStopSec is 20 s).
SHUTDOWN_SECONDS = 5.0
T = TypeVar("T")
Next = Callable[[web.Request], Awaitable[web.StreamResponse]]  # aiohttp's route handler

__all__ = ["App", "Running", "parse_fault", "serve", "start"]


class App:
    def __init__(self, config: Config, log: Logger | None = None) -> None:
        self.config = config
        self.log = log or Logger(kind=config.kind, province=config.province)
        self.client = Client(config.ca_file, config.http_timeout_seconds, self.log)
        self.db: Database = open_database(config)
        self.faults = Faults(self.db)
        self.service = KINDS[config.kind](Env(config, self.db, self.client, self.log, self.faults))
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix=f"standin-{config.kind}")
        self.web = web.Application(middlewares=[self.shell], client_max_size=MAX_BODY)
        self.routes = Routes(self.web.router, self.run)
        self.routes.add("GET", "/", self.root)
        self.routes.add("GET", "/healthz", lambda req: (200, {"status": "ok", "standin": True}))
        self.routes.add("GET", "/readyz", self.readyz)
        self.routes.add("GET", "/version", self.version)
        self.mode = OperationMode(self.db, config.kind, config.province)
        self.routes.add("GET", "/api/operation-mode", self.mode.endpoint)
        self.routes.add("PUT", "/api/operation-mode", self.mode.endpoint)
        self.routes.add("GET", "/metrics", self.mode.metrics)
        self.service.routes(self.routes)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.runner: web.AppRunner | None = None
        self.port = config.port

    @property
    def name(self) -> str:
        where = self.config.province if self.config.kind in PROVINCIAL else "national"
        return f"govops stand-in {self.config.kind} ({where})"

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Listen, create the schema, start background work, serve (in a thread of its own)."""
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        sock = socket.create_server((self.config.host, self.config.port), family=family)
        self.port = int(sock.getsockname()[1])
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name=f"standin-{self.config.kind}", daemon=True
        )
        self.thread.start()
        try:
            self._on_loop(self.client.open())
            self.db.init_schema(FAULT_SCHEMA + MODE_SCHEMA + self.service.schema)
            self.service.start()
            self.runner = self._on_loop(self._serve(sock))
        except BaseException:
            sock.close()
            self.close()
            raise
        self.log(
            "started",
            listen=f"{self.config.host}:{self.port}",
            store=self.db.engine,
            version=__version__,
        )

    async def _serve(self, sock: socket.socket) -> web.AppRunner:
        runner = web.AppRunner(self.web, handle_signals=False, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock, shutdown_timeout=SHUTDOWN_SECONDS).start()
        return runner

    async def _shutdown(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()  # stops listening, closes kept-alive connections
        await self.client.close()

    def close(self) -> None:
        self.service.stop()
        if self.loop is not None and self.thread is not None:
            self._on_loop(self._shutdown())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()
            self.loop = None
        self.pool.shutdown(wait=False)
        self.db.close()

    def _on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """A synchronous handler (or store call) in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    # -- common endpoints -------------------------------------------------------------
    def version(self, req: Request) -> Result:
        return 200, {
            "name": self.name,
            "kind": self.config.kind,
            "standin": True,
            "notice": NOTICE,
            "version": __version__,
        }

    def root(self, req: Request) -> Result:
        return 200, {
            "notice": NOTICE,
            "name": self.name,
            "kind": self.config.kind,
            "province": self.config.province,
            "standin": True,
            "contract": "docs/standins-contract.md",
            "endpoints": self.routes.endpoints,
        }

    def readyz(self, req: Request) -> Result:
        try:
            self.db.ping()
        except DatabaseUnavailable as exc:
            return 503, {"status": "not_ready", "database": self.db.engine, "error": str(exc)}
        return 200, {"status": "ready", "database": self.db.engine}

    def faults_endpoint(self, req: Request) -> Result:
        token = self.config.fault_token
        if token is None:
            raise HTTPError(403, "faults_disabled", "no fault_token_file configured")
        given = req.header("x-fault-token") or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPError(401, "fault_token_required", "X-Fault-Token missing or wrong")
        if req.method == "GET":
            return 200, {"fault": self.faults.current()}
        if req.method == "PUT":
            fault = self.faults.set(parse_fault(req.json()))
            self.log("fault_set", level="warning", mode=fault and fault["mode"])
            return 200, {"fault": fault}
        if req.method == "DELETE":
            self.faults.set(None)
            self.log("fault_cleared", level="warning")
            return 200, {"fault": None}
        raise HTTPError(405, "method_not_allowed", "allowed: DELETE, GET, PUT")

    # -- the shell around every request -------------------------------------------------
    async def _dispatch(
        self,
        request: web.Request,
        handler: Next,
    ) -> web.StreamResponse:
        req = await Request.read(request)
        request[REQUEST] = req
        if req.path == "/_faults":  # before routing and faults: the switch always answers
            return to_response(await self.run(self.faults_endpoint, req))
        fault = self.faults.cached if self.faults.fresh() else await self.run(self.faults.current)
        if fault and fault["mode"] == "down":
            raise HTTPError(503, "fault_down", "fault injected: down")
        if fault and fault["mode"] == "error":
            raise HTTPError(500, "fault_error", "fault injected: error")
        if fault and fault["mode"] == "slow":
            await asyncio.sleep(float(fault["delay_seconds"] or 0))
        try:
            return await handler(request)
        except web.HTTPNotFound:
            raise HTTPError(404, "not_found", req.path) from None
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(set(exc.allowed_methods) - {"HEAD"}))
            raise HTTPError(405, "method_not_allowed", f"allowed: {allowed}") from None

    @web.middleware
    async def shell(
        self,
        request: web.Request,
        handler: Next,
    ) -> web.StreamResponse:
        started = time.monotonic()
        response: web.StreamResponse
        try:
            response = await self._dispatch(request, handler)
        except HTTPError as exc:
            response = json_response(exc.status, exc.body())
        except web.HTTPRequestEntityTooLarge:
            response = json_response(413, {"error": "body_too_large"})
        except DatabaseUnavailable as exc:
            self.log("database_unavailable", level="error", error=str(exc))
            response = json_response(503, {"error": "database_unavailable"})
        except UpstreamUnavailable as exc:
            response = json_response(
                502, {"error": "upstream_unavailable", "url": exc.url, "detail": exc.reason}
            )
        except Exception as exc:
            self.log("internal_error", level="error", error=f"{type(exc).__name__}: {exc}")
            response = json_response(500, {"error": "internal"})
        response.headers["X-Standin"] = NOTICE
        self.log(
            "request",
            method=request.method,
            path=request.rel_url.raw_path,
            status=response.status,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return response


@dataclass
class Running:
    """A started stand-in (used by tests and by `serve`)."""

    app: App

    @property
    def url(self) -> str:
        return f"http://{self.app.config.host}:{self.app.port}"

    def stop(self) -> None:
        self.app.close()


def start(config: Config, log: Logger | None = None) -> Running:
    app = App(config, log)
    app.start()
    return Running(app)


def serve(config: Config) -> None:
    """Run until SIGTERM/SIGINT (systemd stop)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    running = start(config)
    stop.wait()
    running.app.log("stopping")
    running.stop()
