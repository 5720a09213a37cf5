"""Dashboards as code: generated JSON is committed, structurally sound, and every query parses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from exporters.dashboards import generate

PANEL_KEYS = {"id", "type", "title", "gridPos", "datasource", "targets", "fieldConfig", "options"}
TOP_KEYS = {"uid", "title", "schemaVersion", "panels", "templating", "time", "tags"}
# What Grafana substitutes before a query reaches Prometheus.
VARIABLES = {"$province": "hue", "$system": "procedures", "$__rate_interval": "5m"}


def dashboards() -> dict[str, dict[str, object]]:
    return {name: json.loads(text) for name, text in generate.files().items()}


def test_committed_dashboards_are_the_generated_ones() -> None:
    assert not generate.drift(), "run `govops monitoring dashboards` and commit"


def test_three_dashboards_national_province_system() -> None:
    assert {d["uid"] for d in dashboards().values()} == {
        "govops-national",
        "govops-province",
        "govops-system",
    }


@pytest.mark.parametrize("name", sorted(generate.files()))
def test_structure(name: str) -> None:
    d = dashboards()[name]
    assert set(d) >= TOP_KEYS
    assert d["schemaVersion"] == generate.SCHEMA_VERSION
    panels = d["panels"]
    assert isinstance(panels, list) and panels
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    variables = {v["name"] for v in d["templating"]["list"]}  # type: ignore[index]
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & occupied, f"panel {p['title']!r} overlaps another"
        occupied |= cells
        if p["type"] == "row":
            continue
        assert set(p) >= PANEL_KEYS, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["refId"] and t["expr"].strip()
            for var in re.findall(r"\$(\w+)", t["expr"]):
                assert var in variables or f"${var}" in VARIABLES, f"{p['title']}: ${var}"


def _exprs() -> list[str]:
    out = []
    for d in dashboards().values():
        for expr in generate.queries(d):
            m = re.fullmatch(r"label_values\((.+),\s*\w+\)", expr)
            expr = m.group(1) if m else expr
            for var, value in VARIABLES.items():
                expr = expr.replace(var, value)
            out.append(expr)
    return out


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: apt-get install prometheus"
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{i}:check", "expr": e}
                    for i, e in enumerate(_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_backup_panels_colour_at_the_alerts_thresholds() -> None:
    from exporters.dashboards import province
    from exporters.rules import conventions

    assert province.BACKUP_MAX_AGE_HOURS == conventions.BACKUP_MAX_AGE_HOURS
    assert province.STANDBY_LAG_SECONDS == conventions.STANDBY_LAG_SECONDS
