"""The exporter's HTTP face: `/probe` (multi-target pattern), `/metrics` (itself), `/`.

`/probe?target=<province>&module=<module>` answers 400 for any target that is not a province
of the estate and any module not defined here: the prober is not an open proxy, and nothing in
a request becomes an address.
"""

from __future__ import annotations

import contextlib
import html
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from . import __version__
from .checks import MODULES
from .collector import ProbeCollector
from .prober import Prober

log = logging.getLogger("govops_prober")
# Kept back from Prometheus' scrape timeout so the answer arrives before Prometheus gives up
# (the same offset blackbox_exporter uses by default).
TIMEOUT_OFFSET_SECONDS = 0.5
MIN_TIMEOUT_SECONDS = 0.5


class Exporter:
    """Everything the HTTP handler needs; also usable without HTTP (tests, benchmarks)."""

    def __init__(self, prober: Prober) -> None:
        self.prober = prober
        self.own = CollectorRegistry()
        self.probes = Counter(
            "govops_prober_probes",
            "Probes answered, by module and result (ok: every check succeeded).",
            ["module", "result"],
            registry=self.own,
        )
        self.refused = Counter(
            "govops_prober_refused_requests",
            "Probe requests refused (unknown target or module).",
            registry=self.own,
        )

    def timeout_for(self, header: str | None) -> float:
        limit = self.prober.config.timeout_seconds
        if header:
            with contextlib.suppress(ValueError):  # a malformed header: keep our own limit
                limit = min(limit, float(header) - TIMEOUT_OFFSET_SECONDS)
        return max(limit, MIN_TIMEOUT_SECONDS)

    def probe(
        self, query: dict[str, list[str]], scrape_timeout: str | None
    ) -> tuple[int, str, bytes]:
        target = _single(query, "target")
        module = _single(query, "module") or "all"
        if not target or target not in self.prober.config.provinces:
            self.refused.inc()
            return 400, "text/plain; charset=utf-8", _refusal(target, self.prober)
        if module not in MODULES:
            self.refused.inc()
            known = ", ".join(MODULES)
            return 400, "text/plain; charset=utf-8", f"unknown module; one of: {known}\n".encode()
        collector = ProbeCollector(self.prober, target, module, self.timeout_for(scrape_timeout))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        body = generate_latest(registry)
        result = collector.result
        ok = result is not None and result.completed and all(c.ok for c in result.checks)
        self.probes.labels(module, "ok" if ok else "failed").inc()
        if _single(query, "debug") == "true" and result is not None:
            lines = [f"probe {target} module={module} in {result.duration:.3f}s"]
            lines += [
                f"{'ok  ' if c.ok else 'FAIL'} {c.system}/{c.name} {c.duration:.3f}s {c.detail}"
                for c in result.checks
            ]
            body = ("\n".join(lines) + "\n\n").encode() + body
            return 200, "text/plain; charset=utf-8", body
        return 200, CONTENT_TYPE_LATEST, body

    def metrics(self) -> bytes:
        return generate_latest(self.own)

    def index(self) -> bytes:
        cfg = self.prober.config
        modules = "".join(f"<li><code>{html.escape(m)}</code></li>" for m in MODULES)
        first = next(iter(cfg.provinces))
        return (
            "<html><head><title>govops prober</title></head><body>"
            f"<h1>govops domain prober {__version__}</h1>"
            f"<p>Environment <b>{html.escape(cfg.environment)}</b>, "
            f"{len(cfg.provinces)} provinces. Try "
            f'<a href="/probe?target={first}&amp;module=all&amp;debug=true">'
            f"/probe?target={first}&amp;module=all&amp;debug=true</a>.</p>"
            f"<p>Modules:</p><ul>{modules}</ul><p><a href='/metrics'>/metrics</a></p>"
            "</body></html>"
        ).encode()


def _single(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _refusal(target: str | None, prober: Prober) -> bytes:
    shown = (target or "")[:80]
    return (
        f"unknown target {shown!r}: the prober probes only the provinces of the "
        f"{prober.config.environment} estate, by codename (e.g. "
        f"{next(iter(prober.config.provinces))})\n"
    ).encode()


def make_handler(exporter: Exporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"govops-prober/{__version__}"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query)
            started = time.perf_counter()
            routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
                "/probe": lambda: exporter.probe(
                    query, self.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
                ),
                "/metrics": lambda: (200, CONTENT_TYPE_LATEST, exporter.metrics()),
                "/": lambda: (200, "text/html; charset=utf-8", exporter.index()),
            }
            route = routes.get(parts.path)
            if route is None:
                status, ctype, body = 404, "text/plain; charset=utf-8", b"not found\n"
            else:
                try:
                    status, ctype, body = route()
                except Exception:
                    log.exception("error answering %s", parts.path)
                    status, ctype, body = 500, "text/plain; charset=utf-8", b"internal error\n"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            log.debug(
                "%s %s %d %.3fs", self.command, parts.path, status, time.perf_counter() - started
            )

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per failed check is logged by the prober; requests are not

    return Handler


class ProberServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(exporter: Exporter, host: str, port: int) -> tuple[ProberServer, threading.Thread]:
    """Start serving in a background thread; the caller stops it with `server.shutdown()`."""
    server = ProberServer((host, port), make_handler(exporter))
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name="govops-prober-http",
        daemon=True,
    )
    thread.start()
    return server, thread
