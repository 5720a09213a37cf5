"""A wave against real HTTP servers: one per province (its procedures system) and a national
portal. Huế's server stops in the middle of its dossier step: Huế fails and rolls back (its
portal interface is reopened), Tuyên Quang and Hồ Chí Minh City finish.

This is the loopback twin of the lab proof (test_runbook_lab.py stops a stand-in container).
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govops.runbook.state import open_store
from tests.fixtures.runbook import (
    isolated_cache,
    runbook_doc,
    small_environment,
    start,
    statuses,
    step,
    write_runbook,
)

__all__ = ["isolated_cache"]
PROVINCES = ("tuyen_quang", "hue", "ho_chi_minh")


class Server:
    """A real ThreadingHTTPServer on a free loopback port with a few stand-in routes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[str] = []
        self.interfaces: dict[str, str] = {}
        self.dossiers: set[str] = set()
        self.stop_after_dossiers: int | None = None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                outer.calls.append(f"GET {self.path}")
                if m := re.fullmatch(r"/api/provinces/(\w+)/portal-interface", self.path):
                    self.reply(200, {"state": outer.interfaces.get(m[1], "open")})
                elif self.path == "/api/dossiers/coverage":
                    self.reply(200, {"missing": [], "count": len(outer.dossiers)})
                else:
                    self.reply(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.calls.append(f"POST {self.path}")
                if m := re.fullmatch(
                    r"/api/provinces/(\w+)/portal-interface/(open|close)", self.path
                ):
                    outer.interfaces[m[1]] = "closed" if m[2] == "close" else "open"
                    self.reply(200, {"state": outer.interfaces[m[1]]})
                elif self.path == "/api/dossiers":
                    outer.dossiers.add(body["commune_code"])
                    self.reply(201, {"commune_code": body["commune_code"], "status": "received"})
                    limit = outer.stop_after_dossiers
                    if limit is not None and len(outer.dossiers) >= limit:
                        # The stand-in goes down mid-wave: nothing answers any more.
                        threading.Thread(target=outer.stop, daemon=True).start()
                else:
                    self.reply(404, {"error": "not_found"})

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.http.shutdown()
            self.http.server_close()


@pytest.fixture
def servers() -> Iterator[dict[str, Server]]:
    made = {name: Server(name) for name in (*PROVINCES, "portal")}
    yield made
    for server in made.values():
        server.stop()


def test_one_province_stops_mid_wave(tmp_path: Path, servers: dict[str, Server]) -> None:
    ports = {p: servers[p].port for p in PROVINCES}
    portal = f"http://127.0.0.1:{servers['portal'].port}"
    procedures = "http://127.0.0.1:{{ " + json.dumps(ports) + "[province] }}"
    interface = portal + "/api/provinces/{{ province }}/portal-interface"
    steps = [
        step(
            "close_interface",
            action={
                "executor": "http",
                "with": {"method": "POST", "url": interface + "/close", "json": {}},
            },
            verify={
                "executor": "http",
                "with": {"url": interface, "assert": [{"path": "state", "equals": "closed"}]},
            },
            rollback={
                "executor": "http",
                "with": {"method": "POST", "url": interface + "/open", "json": {}},
            },
            readiness_check="portal_interface_closed",
        ),
        step(
            "dossiers",
            foreach="commune",
            concurrency=2,
            retries=1,
            readiness_check="dossier_submission_tested",
            action={
                "executor": "http",
                "with": {
                    "method": "POST",
                    "url": "{{ procedures }}/api/dossiers",
                    "expect_status": 201,
                    "json": {
                        "commune_code": "{{ commune.code }}",
                        "procedure_code": "T",
                        "applicant": {"test": True},
                    },
                },
            },
            verify={
                "executor": "http",
                "with": {
                    "url": "{{ procedures }}/api/dossiers/coverage",
                    "assert": [{"path": "missing", "excludes": "{{ commune.code }}"}],
                },
            },
        ),
        step(
            "coverage",
            action={
                "executor": "http",
                "with": {
                    "url": "{{ procedures }}/api/dossiers/coverage",
                    "assert": [{"path": "count", "gte": "{{ commune_count }}"}],
                },
            },
        ),
    ]
    doc = runbook_doc(
        [("trial", steps)],
        variables={"procedures": procedures},
        waves={"pilot": ["tuyen_quang"], "batch_size": 2, "max_concurrency": 2, "max_errors": 1},
    )
    servers["hue"].stop_after_dossiers = 3  # Huế goes down after 3 of its 8 communes
    with open_store(str(tmp_path / "state.sqlite3")) as store:
        run, engine = start(
            store, write_runbook(tmp_path / "rb.yml", doc), small_environment(PROVINCES, communes=8)
        )
        assert engine.execute() == "completed_with_failures"
        assert statuses(store, run.id) == {
            "tuyen_quang": "done",
            "hue": "rolled_back",
            "ho_chi_minh": "done",
        }
        # Huế rolled back: its interface reopened on the national portal; the others closed.
        assert servers["portal"].interfaces == {
            "tuyen_quang": "closed",
            "hue": "open",
            "ho_chi_minh": "closed",
        }
        assert servers["portal"].calls.count("POST /api/provinces/hue/portal-interface/open") == 1
        progress = store.progress(run.id)
        coverage = {c.province: (c.tested, c.total) for c in progress.communes}
        assert coverage["tuyen_quang"] == (8, 8) and coverage["ho_chi_minh"] == (8, 8)
        assert coverage["hue"][0] < 8
        closed = {r.check_id: r.provinces_done for r in progress.readiness}
        assert closed["portal_interface_closed"] == ("tuyen_quang", "ho_chi_minh")
        failure = next(p for p in progress.provinces if p.province == "hue")
        assert failure.failed_step == "dossiers" and "communes" in failure.message
