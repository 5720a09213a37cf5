"""Readiness from evidence against a real Prometheus (issue 16 part 6): the prober's series as
the prober exports them, scraped by a real Prometheus; each check's `evidence:` query from
readiness.yml evaluated per province; the report shows both counts and the disagreement, and
`govops cutover report --strict` exits 1 for it. With Prometheus gone, the report still comes
out, saying "evidence unavailable" (exit 0; 3 with --strict)."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from govops.cli import main
from govops.runbook.report import observe, render_report
from govops.runbook.state import open_store
from tests.fixtures.postgres import free_port
from tests.fixtures.runbook import (
    isolated_cache,
    runbook_doc,
    small_environment,
    start,
    step,
    write_runbook,
)

__all__ = ["isolated_cache"]
PROVINCES = ("tuyen_quang", "hue")


class _Prober:
    """A /metrics endpoint with the prober's series: SSO seen working in Huế only."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                lines = [
                    'govops_probe_success{province="hue",system="procedures",check="sso_login"} 1',
                    'govops_probe_success{province="tuyen_quang",system="procedures",'
                    'check="sso_login"} 0',
                ]
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run scripts/install-system-deps.sh")
    prober = _Prober()
    d = tmp_path / "prometheus"
    d.mkdir()
    (d / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: prober\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{prober.port}']}}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # ready, and the first scrape stored
            with contextlib.suppress(OSError, ValueError):
                query = f"{url}/api/v1/query?query=govops_probe_success"
                with urllib.request.urlopen(query, timeout=2) as answer:
                    if len(json.loads(answer.read())["data"]["result"]) == 2:
                        break
            if time.monotonic() > deadline:
                pytest.fail("prometheus did not start scraping within 30 s")
            time.sleep(0.3)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # the Prometheus this fixture started, by its handle
            proc.wait(10)
        prober.server.shutdown()


def test_the_report_counts_from_evidence_and_names_the_disagreement(
    tmp_path: Path, prometheus: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, proc = prometheus
    state = tmp_path / "state.sqlite3"
    doc = runbook_doc([("trial", [step("sso", readiness_check="sso_tested")])])
    with open_store(str(state)) as store:
        run, engine = start(
            store, write_runbook(tmp_path / "rb.yml", doc), small_environment(PROVINCES)
        )
        assert engine.execute() == "completed"  # both provinces report SSO tested
        progress = store.progress(run.id)
    evidence = observe(progress, url)
    assert evidence.available, evidence.reason
    assert evidence.checks["sso_tested"].observed == ("hue",)
    text = render_report(progress, "text", evidence)
    line = next(x for x in text.splitlines() if "Single sign-on" in x)
    assert "2/2" in line and "1/2" in line, line  # steps: both; observed: Huế only
    assert "Steps and evidence disagree" in text
    assert "tuyen_quang" in text and "the steps reported it done; not observed" in text

    runner = CliRunner()
    report = ["cutover", "report", run.id, "--state", str(state), "--prometheus", url]
    result = runner.invoke(main, [*report, "--strict"])
    assert result.exit_code == 1, result.output
    assert "the steps reported it done; not observed" in result.output
    data = json.loads(runner.invoke(main, [*report, "--format", "json"]).output)
    assert data["evidence"]["disagreements"] == [
        {"check_id": "sso_tested", "province": "tuyen_quang", "reported": True, "observed": False}
    ]

    proc.terminate()  # Prometheus gone: the report still comes out
    proc.wait(10)
    result = runner.invoke(main, report)
    assert result.exit_code == 0, result.output
    assert "evidence unavailable: Prometheus at" in result.output
    assert runner.invoke(main, [*report, "--strict"]).exit_code == 3
