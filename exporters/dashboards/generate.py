"""Grafana dashboards as code: national readiness, one province, one system.

Plain Python writing Grafana's JSON model (schemaVersion 39), no library: a dashboard is a list
of rows of panels, each panel one or a few PromQL queries over the recording rules of
exporters/rules (so the national server, which holds only federated recording rules, can draw
them too). `python -m exporters.dashboards.generate [--check]` writes (or checks) the JSON
committed beside this module; a test parses every query with promtool.

The dashboards: national.py, province.py, system.py; their model and Grafana's JSON: model.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from exporters import generated
from exporters.dashboards.model import SCHEMA_VERSION, to_json
from exporters.dashboards.national import national
from exporters.dashboards.province import province
from exporters.dashboards.system import system

__all__ = ["DASHBOARDS", "SCHEMA_VERSION", "files", "main", "queries"]

HERE = Path(__file__).resolve().parent
DASHBOARDS = (national, province, system)


def files() -> dict[str, str]:
    result = {}
    for make in DASHBOARDS:
        d = make()
        result[f"{d.uid}.json"] = json.dumps(to_json(d), indent=2, ensure_ascii=False) + "\n"
    return result


def queries(dashboard: dict[str, Any]) -> Iterator[str]:
    """Every PromQL expression of a dashboard's panels and variables."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["definition"]


def drift(directory: Path = HERE) -> list[str]:
    """Unified diffs of committed files that differ from what would be generated."""
    return generated.drift(files(), directory)


def write(directory: Path = HERE) -> list[str]:
    return generated.write(files(), directory)


def main(argv: Iterable[str] | None = None) -> int:
    return generated.main("exporters.dashboards.generate", __doc__, files, HERE, argv)


if __name__ == "__main__":
    sys.exit(main())
