#!/usr/bin/python3
"""govops alert sink: a webhook receiver that stores what Alertmanager sends, one JSON line each.

Honestly named: it pages nobody. It stands where the government's paging and ticket gateways
stand in production, so that a lab (or a Molecule scenario) proves delivery end to end: an
alert leaves Prometheus, is routed, grouped and inhibited by Alertmanager and reaches a
receiver, which keeps it for tests and people to read.

    POST /<receiver>     Alertmanager's webhook payload (version 4); stored as
                         {"received_at": "...+07:00", "path": "/<receiver>", "payload": {...}}
    GET  /notifications  the stored lines (application/x-ndjson), oldest first
    GET  /-/healthy      200

Standard library only (the monitoring host's python3); runs as a systemd unit
(govops-alert-sink.service, installed by roles/alertmanager when alertmanager_sink_enabled).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_BODY = 1024 * 1024  # Alertmanager's groups are small; anything bigger is not for us.
VIETNAM = datetime.timezone(datetime.timedelta(hours=7), "Asia/Ho_Chi_Minh")


class Store:
    """Appends JSON lines; keeps one previous file when the current passes `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.lock = threading.Lock()

    def append(self, record: dict[str, object]) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self.lock:
            if self.path.exists() and self.path.stat().st_size > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())

    def read(self) -> bytes:
        with self.lock:
            return self.path.read_bytes() if self.path.exists() else b""


def handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "govops-alert-sink"

        def _answer(self, code: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/-/healthy":
                self._answer(200, b"ok\n")
            elif self.path == "/notifications":
                self._answer(200, store.read(), "application/x-ndjson")
            else:
                self._answer(404, b"not found\n")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._answer(413 if length else 411, b"expected a JSON body up to 1 MiB\n")
                return
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(400, b"expected JSON\n")
                return
            if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
                self._answer(400, b"expected Alertmanager's webhook payload (alerts: [...])\n")
                return
            received = datetime.datetime.now(VIETNAM).isoformat(timespec="seconds")
            store.append({"received_at": received, "path": self.path, "payload": payload})
            self._answer(200, b"stored\n")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:9097", help="host:port to listen on")
    parser.add_argument("--file", required=True, type=Path, help="JSON lines file to append to")
    parser.add_argument("--max-bytes", type=int, default=16 * 1024 * 1024, help="rotate past this")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--listen {args.listen!r}: expected host:port")
    args.file.parent.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((host, int(port)), handler(Store(args.file, args.max_bytes)))
    print(f"govops alert sink on {args.listen}, storing to {args.file}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
