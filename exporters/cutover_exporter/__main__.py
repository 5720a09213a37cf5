"""`python -m exporters.cutover_exporter --state URL [--run ID] [--listen HOST:PORT]`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from prometheus_client import CollectorRegistry, start_http_server

from .collector import CutoverCollector
from .source import RunbookStoreSource

DEFAULT_LISTEN = "127.0.0.1:9472"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cutover_exporter", description=__doc__)
    parser.add_argument("--state", help="runbook state store URL (default: the engine's)")
    parser.add_argument("--run", help="the run to show (default: the active, else the latest)")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, help="host:port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--listen: expected host:port, got {args.listen!r}")
    serve(RunbookStoreSource(args.state, args.run), host, int(port))
    return 0


def serve(source: RunbookStoreSource, host: str, port: int) -> None:
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
