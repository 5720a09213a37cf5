"""The application shell every kind shares: dispatch, faults, health, version, serving."""

from __future__ import annotations

import hmac
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import __version__
from .config import PROVINCIAL, Config
from .core import (
    COMMUNE_CODE,
    NOTICE,
    DatabaseUnavailable,
    HTTPError,
    Logger,
    Service,
    UpstreamUnavailable,
    now_iso,
)
from .db import Database, open_database
from .web import Client, Request, Response, Router, Server, json_response

FAULT_MODES = ("down", "slow", "error", "refuse_commune")
FAULT_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS standin_faults (
        id INTEGER PRIMARY KEY, mode TEXT NOT NULL, delay_seconds DOUBLE PRECISION,
        commune TEXT, set_at TEXT NOT NULL)""",
)


def service_for(kind: str, app: App) -> Service:
    from . import documents, lgsp, meetings, national, portal, procedures, reporting

    classes: dict[str, type[Service]] = {
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
    return classes[kind](app)


def parse_fault(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a PUT /_faults body into the stored fault (pure; 400 on nonsense)."""
    mode = body.get("mode")
    if mode not in FAULT_MODES:
        raise HTTPError(400, "invalid_request", f"mode: one of {', '.join(FAULT_MODES)}")
    fault: dict[str, Any] = {"mode": mode, "delay_seconds": None, "commune": None}
    if mode == "slow":
        delay = body.get("delay_seconds")
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 < delay <= 300:
            raise HTTPError(400, "invalid_request", "delay_seconds: a number in (0, 300]")
        fault["delay_seconds"] = float(delay)
    if mode == "refuse_commune":
        commune = body.get("commune")
        if not isinstance(commune, str) or not COMMUNE_CODE.match(commune):
            raise HTTPError(400, "invalid_request", "commune: a five-digit commune code")
        fault["commune"] = commune
    return fault


class Faults:
    """The one active fault, kept in the state store (survives restarts), cached for 1 s."""

    TTL = 1.0

    def __init__(self, db: Database) -> None:
        self.db, self.lock = db, threading.Lock()
        self.cached: dict[str, Any] | None = None
        self.read_at = float("-inf")

    def current(self) -> dict[str, Any] | None:
        if time.monotonic() - self.read_at < self.TTL:
            return self.cached
        try:
            with self.db.tx() as tx:
                row = tx.one(
                    "SELECT mode, delay_seconds, commune, set_at FROM standin_faults WHERE id = 1"
                )
        except DatabaseUnavailable:
            return self.cached  # last known: a database outage must not hide a fault
        with self.lock:
            self.cached, self.read_at = row, time.monotonic()
        return row

    def set(self, fault: dict[str, Any] | None) -> dict[str, Any] | None:
        with self.db.tx() as tx:
            tx.run("DELETE FROM standin_faults WHERE id = 1")
            if fault is not None:
                fault = {**fault, "set_at": now_iso()}
                tx.run(
                    "INSERT INTO standin_faults (id, mode, delay_seconds, commune, set_at)"
                    " VALUES (1, %s, %s, %s, %s)",
                    (fault["mode"], fault["delay_seconds"], fault["commune"], fault["set_at"]),
                )
        with self.lock:
            self.cached, self.read_at = fault, time.monotonic()
        return fault

    def refuses(self, commune_code: str) -> bool:
        fault = self.current()
        return bool(
            fault and fault["mode"] == "refuse_commune" and fault["commune"] == commune_code
        )


class App:
    def __init__(self, config: Config, log: Logger | None = None) -> None:
        self.config = config
        self.log = log or Logger(kind=config.kind, province=config.province)
        self.client = Client(config.ca_file, config.http_timeout_seconds, self.log)
        self.db: Database = open_database(config)
        self.faults = Faults(self.db)
        self.service = service_for(config.kind, self)
        self.router = Router()
        self.router.add("GET", "/", self.root)
        self.router.add("GET", "/healthz", lambda req: (200, {"status": "ok", "standin": True}))
        self.router.add("GET", "/readyz", self.readyz)
        self.router.add("GET", "/version", self.version)
        self.service.routes(self.router)

    @property
    def name(self) -> str:
        where = self.config.province if self.config.kind in PROVINCIAL else "national"
        return f"govops stand-in {self.config.kind} ({where})"

    def start(self) -> None:
        self.db.init_schema(FAULT_SCHEMA + self.service.schema)
        self.service.start()
        self.log(
            "started",
            listen=f"{self.config.host}:{self.config.port}",
            store=self.db.engine,
            version=__version__,
        )

    def close(self) -> None:
        self.service.stop()
        self.db.close()

    # -- common endpoints -------------------------------------------------------------
    def version(self, req: Request) -> tuple[int, Any]:
        return 200, {
            "name": self.name,
            "kind": self.config.kind,
            "standin": True,
            "notice": NOTICE,
            "version": __version__,
        }

    def root(self, req: Request) -> tuple[int, Any]:
        endpoints = [f"{method} {pattern}" for method, _, _, pattern in self.router.routes]
        return 200, {
            "notice": NOTICE,
            "name": self.name,
            "kind": self.config.kind,
            "province": self.config.province,
            "standin": True,
            "contract": "docs/standins-contract.md",
            "endpoints": endpoints,
        }

    def readyz(self, req: Request) -> tuple[int, Any]:
        try:
            self.db.ping()
        except DatabaseUnavailable as exc:
            return 503, {"status": "not_ready", "database": self.db.engine, "error": str(exc)}
        return 200, {"status": "ready", "database": self.db.engine}

    def faults_endpoint(self, req: Request) -> tuple[int, Any]:
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

    # -- dispatch -----------------------------------------------------------------------
    def _dispatch(self, req: Request) -> Response:
        if req.path == "/_faults":
            result: Any = self.faults_endpoint(req)
        else:
            fault = self.faults.current()
            if fault and fault["mode"] == "down":
                raise HTTPError(503, "fault_down", "fault injected: down")
            if fault and fault["mode"] == "error":
                raise HTTPError(500, "fault_error", "fault injected: error")
            if fault and fault["mode"] == "slow":
                time.sleep(float(fault["delay_seconds"] or 0))
            handler, req.params = self.router.match(req.method, req.path)
            result = handler(req)
        return result if isinstance(result, Response) else json_response(*result)

    def handle(self, req: Request) -> Response:
        started = time.monotonic()
        try:
            response = self._dispatch(req)
        except HTTPError as exc:
            response = json_response(exc.status, exc.body())
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
            method=req.method,
            path=req.path,
            status=response.status,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return response


@dataclass
class Running:
    """A started stand-in (used by tests and by `serve`)."""

    app: App
    server: Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.app.config.host}:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        self.app.close()


def start(config: Config, log: Logger | None = None) -> Running:
    app = App(config, log)
    app.start()
    server = Server((config.host, config.port), app)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.2},
        name=f"standin-{config.kind}",
        daemon=True,
    )
    thread.start()
    return Running(app, server, thread)


def serve(config: Config) -> None:
    """Run until SIGTERM/SIGINT (systemd stop)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    running = start(config)
    stop.wait()
    running.app.log("stopping")
    running.stop()
