#!/usr/bin/python3
"""govops planned-work exporter: the runbook engine's open planned-work silences, as series.

A cutover step that drains, restarts or switches something opens an Alertmanager silence
tagged `[govops RUN/PROVINCE/STEP]` in its comment (govops/runbook/silences.py). Alertmanager
keeps such silences to itself; the SLO rules (exporters/rules/slo.py) must also know, so that
the probes failing during planned work do not burn the error budget. On each scrape this asks
Alertmanager for its silences and exposes, for every active one of the engine's:

    govops_planned_work{province="hue", system="procedures"} 1   (system "" = the whole province)
    govops_planned_work_up 1                                      (0: Alertmanager did not answer)

A silence's `system` matcher may be a regular expression: it is expanded over --systems. An
on-call engineer's own silence (no govops tag) is not planned work and is not exported.
Standard library only; a systemd unit of roles/alertmanager (alertmanager_planned_work_enabled).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TAG = "[govops "


def planned(silences: list[dict[str, Any]], systems: list[str]) -> set[tuple[str, str]]:
    """(province, system) pairs under the engine's active silences; system "" = all of them."""
    out: set[tuple[str, str]] = set()
    for s in silences:
        if s.get("status", {}).get("state") != "active" or TAG not in str(s.get("comment", "")):
            continue
        by_name = {m.get("name"): m for m in s.get("matchers", []) if m.get("isEqual", True)}
        province = by_name.get("province")
        if province is None or province.get("isRegex"):
            continue  # planned work is scoped to a province (govops/runbook/silences.py)
        system = by_name.get("system")
        if system is None:
            out.add((str(province["value"]), ""))
        elif system.get("isRegex"):
            pattern = re.compile(str(system["value"]))
            out |= {(str(province["value"]), x) for x in systems if pattern.fullmatch(x)}
        else:
            out.add((str(province["value"]), str(system["value"])))
    return out


def exposition(pairs: set[tuple[str, str]] | None) -> str:
    lines = [
        "# HELP govops_planned_work 1 while a runbook step's planned-work silence is active.",
        "# TYPE govops_planned_work gauge",
    ]
    for province, system in sorted(pairs or ()):
        lines.append(f'govops_planned_work{{province="{province}",system="{system}"}} 1')
    lines += [
        "# HELP govops_planned_work_up 1 if Alertmanager answered this scrape.",
        "# TYPE govops_planned_work_up gauge",
        f"govops_planned_work_up {0 if pairs is None else 1}",
    ]
    return "\n".join(lines) + "\n"


def handler(alertmanager: str, systems: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path != "/metrics":
                self._answer(404, "not found\n")
                return
            pairs: set[tuple[str, str]] | None
            try:
                url = f"{alertmanager.rstrip('/')}/api/v2/silences"
                with urllib.request.urlopen(url, timeout=5) as resp:
                    pairs = planned(json.loads(resp.read()), systems)
            except (OSError, ValueError) as exc:
                sys.stderr.write(f"asking {alertmanager}: {exc}\n")
                pairs = None
            self._answer(200, exposition(pairs), "text/plain; version=0.0.4")

        def _answer(self, code: int, text: str, kind: str = "text/plain") -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # scraped every few seconds: nothing worth a line each time

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:9098", help="host:port to listen on")
    parser.add_argument("--alertmanager", default="http://127.0.0.1:9093", help="its base URL")
    parser.add_argument(
        "--systems",
        default="procedures,documents,lgsp,reporting,meetings",
        help="system names a regular-expression matcher is expanded over (comma-separated)",
    )
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--listen {args.listen!r}: expected host:port")
    systems = [s for s in args.systems.split(",") if s]
    server = ThreadingHTTPServer((host, int(port)), handler(args.alertmanager, systems))
    print(f"govops planned-work exporter on {args.listen}, asking {args.alertmanager}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
