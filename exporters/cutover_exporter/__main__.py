"""`python -m exporters.cutover_exporter --state URL [--run ID] [--listen HOST:PORT]`.

Exit codes: 2 bad input (an option), 1 cannot listen; otherwise it serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading

from prometheus_client import CollectorRegistry, start_http_server

from govops.redact import redact_logs

from .collector import CutoverCollector
from .source import RunbookStoreSource

DEFAULT_LISTEN = "127.0.0.1:9472"


class ListenError(ValueError):
    """A --listen value that is not HOST:PORT with a port from 1 to 65535."""


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:9472` for IPv6) → (host, port); ListenError if malformed."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isascii() or not port.isdigit() or len(port) > 5:
        raise ListenError(f"expected HOST:PORT, got {value!r}")
    if not 0 < int(port) < 65536:
        raise ListenError(f"expected a port from 1 to 65535, got {port}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cutover_exporter", description=__doc__)
    parser.add_argument("--state", help="runbook state store URL (default: the engine's)")
    parser.add_argument("--run", help="the run to show (default: the active, else the latest)")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, help="host:port")
    args = parser.parse_args(argv)
    try:
        host, port = parse_listen(args.listen)
    except ListenError as exc:
        parser.error(f"--listen: {exc}")  # exit 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    redact_logs()
    try:
        serve(RunbookStoreSource(args.state, args.run), host, port)
    except socket.gaierror as exc:
        parser.error(f"--listen: unknown host {host!r}: {exc.strerror}")
    except OSError as exc:
        print(f"cutover_exporter: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def serve(source: RunbookStoreSource, host: str, port: int) -> None:
    """Serve /metrics until SIGTERM or SIGINT. The store is only ever read (read-only, per
    scrape); a missing one is reported down (govops_cutover_up 0), never created."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CutoverCollector(source))
    server, thread = start_http_server(port, host, registry=registry)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    thread.join(timeout=5)


if __name__ == "__main__":
    sys.exit(main())
