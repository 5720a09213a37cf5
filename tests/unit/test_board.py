"""The static readiness board: queries a Prometheus API, renders HTML, and Chromium draws it."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from exporters.board import render as board
from exporters.board.prometheus import Sample
from govops.cli import main
from govops.registry.estate import load_estate
from tests.chromium import png_size, screenshot

ROOT = Path(__file__).resolve().parents[2]


def _vector(*samples: tuple[dict[str, str], float]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1751000000, str(v)]} for m, v in samples],
        },
    }


def _answers() -> dict[str, dict[str, Any]]:
    fronts = [({"province": "hue", "system": s}, 1.0) for s in board.SYSTEM_IDS]
    fronts[2] = ({"province": "hue", "system": "lgsp"}, 0.0)
    fronts += [({"province": "tuyen_quang", "system": s}, 1.0) for s in board.SYSTEM_IDS]
    return {
        board.Q_FRONTS: _vector(*fronts),
        board.Q_CHECKS: _vector(
            ({"province": "hue", "system": "procedures", "check": "sso_login"}, 0),
            ({"province": "hue", "system": "procedures", "check": "payment"}, 1),
        ),
        board.Q_TESTED: _vector(({"province": "hue"}, 38), ({"province": "tuyen_quang"}, 124)),
        board.Q_COMMUNES: _vector(({"province": "hue"}, 40), ({"province": "tuyen_quang"}, 124)),
        board.Q_LAG: _vector(({"province": "hue"}, 1250)),
        board.Q_READINESS: _vector(({"check": "sso_tested"}, 1)),
        board.Q_LATE: _vector(({"province": "hue", "step": "close_portal_interface"}, 600)),
        board.Q_ALERTS: _vector(
            ({"alertname": "GovopsSSOFailing", "severity": "critical", "province": "hue"}, 1)
        ),
    }


@pytest.fixture
def prometheus() -> Iterator[str]:
    """A stand-in for Prometheus' /api/v1/query answering the board's queries."""
    answers = _answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["query"][0]
            body = json.dumps(answers.get(query, _vector())).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_board_renders_and_chromium_draws_it(prometheus: str, tmp_path: Path) -> None:
    out = tmp_path / "board.html"
    result = CliRunner().invoke(
        main, ["monitoring", "board", "--prometheus", prometheus, "--out", str(out), "--env", "lab"]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    # Prometheus watches hue and tuyen_quang (as a lab running two provinces): two rows, not
    # 34 with 32 of them "no data"; tuyen_quang only is all up: hue's lgsp is down.
    assert 'id="provinces-up">1 / 2<' in html
    assert "watched: 2 of the 34 the estate declares" in html
    assert "procedures/sso_login" in html and "close_portal_interface" in html
    assert "GovopsSSOFailing" in html and "21 min" in html  # 1250 s of sync lag
    assert html.count('class="down"') == 1 and html.count('class="nodata"') == 0
    png = tmp_path / "board.png"
    screenshot(out, png, tmp_path)
    assert png_size(png) == (1400, 2400)
    assert png.stat().st_size > 50_000, "a blank page compresses far smaller"


def test_unreachable_prometheus_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "monitoring",
            "board",
            "--prometheus",
            "http://127.0.0.1:9",
            "--out",
            str(tmp_path / "b.html"),
            "--env",
            "lab",
        ],
    )
    assert result.exit_code == 1
    assert "cannot query Prometheus" in result.output


def test_a_prometheus_watching_nothing_yet_shows_every_declared_province() -> None:
    def nothing(query: str) -> list[Sample]:
        return []

    collected = board.collect(
        load_estate(ROOT / "inventories" / "lab" / "estate.yml"),
        "http://prometheus.invalid",
        nothing,
    )
    assert collected.declared == len(collected.provinces) == 34
    assert all(v is None for row in collected.provinces for v in row.systems.values())


def test_the_board_keeps_the_provinces_prometheus_watches() -> None:
    def answer(query: str) -> list[Sample]:
        if query == board.Q_FRONTS:
            return [Sample({"province": "hue", "system": s}, 1.0) for s in board.SYSTEM_IDS]
        return []

    collected = board.collect(
        load_estate(ROOT / "inventories" / "lab" / "estate.yml"),
        "http://prometheus.invalid",
        answer,
    )
    assert [row.codename for row in collected.provinces] == ["hue"]
    assert collected.provinces_up == 1 and collected.declared == 34
