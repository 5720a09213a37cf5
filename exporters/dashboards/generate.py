"""Grafana dashboards as code: national readiness, one province, one system.

Plain Python writing Grafana's JSON model (schemaVersion 39), no library: a dashboard is a list
of rows of panels, each panel one or a few PromQL queries over the recording rules of
exporters/rules (so the national server, which holds only federated recording rules, can draw
them too). `python -m exporters.dashboards.generate [--check]` writes (or checks) the JSON
committed beside this module; a test parses every query with promtool.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporters import generated

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24  # Grafana's grid is 24 columns wide
GREEN, RED, AMBER = "green", "red", "orange"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # stat, timeseries, table, state-timeline, bargauge
    queries: tuple[Query, ...]
    width: int = 12
    height: int = 8
    unit: str = "short"
    description: str = ""
    thresholds: tuple[tuple[float | None, str], ...] = ((None, GREEN),)
    mappings: tuple[dict[str, Any], ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[dict[str, Any], ...] = ()
    tags: tuple[str, ...] = ("govops",)


UP_DOWN = (
    {
        "type": "value",
        "options": {"0": {"text": "DOWN", "color": RED}, "1": {"text": "UP", "color": GREEN}},
    },
)
OK_FAIL = (
    {
        "type": "value",
        "options": {"0": {"text": "FAIL", "color": RED}, "1": {"text": "OK", "color": GREEN}},
    },
)
RED_BELOW_1 = ((None, RED), (1.0, GREEN))


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }


def _query_variable(name: str, label: str, query: str, multi: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "current": {},
        "hide": 0,
    }


# -- the three dashboards ---------------------------------------------------------------------


def national() -> Dashboard:
    return Dashboard(
        uid="govops-national",
        title="govops · National readiness",
        description="The 34 provinces at a glance: systems up, the dispatch's readiness checks, "
        "communes tested, cutover deadlines.",
        variables=(_datasource_variable(),),
        rows=(
            Row(
                "Now",
                (
                    Panel(
                        "Provinces with every system up",
                        "stat",
                        (Query(":govops_provinces_all_up:count", instant=True),),
                        width=6,
                        height=5,
                        description="Provinces whose five systems all answer their front door.",
                        thresholds=((None, RED), (34, GREEN)),
                        maximum=34,
                    ),
                    Panel(
                        "Cutover steps late",
                        "stat",
                        (
                            Query(
                                "count(-govops_cutover_deadline_seconds_left > 0) or vector(0)",
                                instant=True,
                            ),
                        ),
                        width=6,
                        height=5,
                        thresholds=((None, GREEN), (1, RED)),
                    ),
                    Panel(
                        "Cutover steps at risk",
                        "stat",
                        (
                            Query(
                                "count(govops_cutover_step_at_risk == 1) or vector(0)", instant=True
                            ),
                        ),
                        width=6,
                        height=5,
                        thresholds=((None, GREEN), (1, AMBER)),
                    ),
                    Panel(
                        "Communes tested in period",
                        "stat",
                        (
                            Query(
                                "sum(province:govops_communes_tested:count)"
                                " / sum(province:govops_communes:count)",
                                instant=True,
                            ),
                        ),
                        width=6,
                        height=5,
                        unit="percentunit",
                        thresholds=((None, RED), (0.9, AMBER), (1, GREEN)),
                        minimum=0,
                        maximum=1,
                    ),
                ),
            ),
            Row(
                "The dispatch's readiness checks",
                (
                    Panel(
                        "Provinces done, per readiness check (runbook) beside the dispatch's count",
                        "bargauge",
                        (
                            Query(
                                "check:govops_readiness_provinces_done:sum",
                                "{{check}}",
                                instant=True,
                            ),
                            Query(
                                "govops_readiness_dispatch_done",
                                "{{check}} (dispatch 28 June)",
                                instant=True,
                            ),
                        ),
                        width=24,
                        height=10,
                        thresholds=((None, RED), (34, GREEN)),
                        minimum=0,
                        maximum=34,
                        options={"displayMode": "gradient", "orientation": "horizontal"},
                    ),
                ),
            ),
            Row(
                "Provinces",
                (
                    Panel(
                        "Systems up, by province",
                        "state-timeline",
                        (
                            Query(
                                "min by (province) (province_system:govops_front_up:max)",
                                "{{province}}",
                            ),
                        ),
                        width=24,
                        height=16,
                        mappings=UP_DOWN,
                        thresholds=RED_BELOW_1,
                    ),
                    Panel(
                        "Dossier sync lag to the national portal",
                        "timeseries",
                        (Query("province:govops_dossier_sync_lag_seconds:max", "{{province}}"),),
                        unit="s",
                    ),
                    Panel(
                        "Firing alerts",
                        "table",
                        (Query('ALERTS{alertstate="firing"}', instant=True),),
                        options={"showHeader": True},
                    ),
                ),
            ),
        ),
    )


def province() -> Dashboard:
    p = 'province="$province"'
    return Dashboard(
        uid="govops-province",
        title="govops · Province",
        description="One province: its five systems, each synthetic transaction, communes, "
        "sync lag, certificates and error budgets.",
        variables=(
            _datasource_variable(),
            _query_variable(
                "province",
                "Province",
                "label_values(province_system:govops_front_up:max, province)",
            ),
        ),
        rows=(
            Row(
                "Systems",
                (
                    Panel(
                        "Front door (HTTPS readiness)",
                        "state-timeline",
                        (Query(f"province_system:govops_front_up:max{{{p}}}", "{{system}}"),),
                        width=24,
                        height=7,
                        mappings=UP_DOWN,
                        thresholds=RED_BELOW_1,
                    ),
                    Panel(
                        "Transactions",
                        "state-timeline",
                        (
                            Query(
                                f"province_system_check:govops_probe_success:max{{{p}}}",
                                "{{check}}",
                            ),
                        ),
                        width=24,
                        height=10,
                        mappings=OK_FAIL,
                        thresholds=RED_BELOW_1,
                    ),
                    Panel(
                        "Transaction duration",
                        "timeseries",
                        (
                            Query(
                                f"max by (check) (govops_probe_duration_seconds{{{p}}})",
                                "{{check}}",
                            ),
                        ),
                        unit="s",
                    ),
                    Panel(
                        "Error budget: error ratio over 1h, per objective",
                        "timeseries",
                        (
                            Query(
                                f"province_system:govops_slo_errors:ratio_rate1h{{{p}}}",
                                "{{slo}} {{system}}",
                            ),
                        ),
                        unit="percentunit",
                    ),
                ),
            ),
            Row(
                "Communes and sync",
                (
                    Panel(
                        "Communes tested within the period",
                        "stat",
                        (
                            Query(
                                f"province:govops_communes_tested:count{{{p}}}"
                                f" / province:govops_communes:count{{{p}}}",
                                instant=True,
                            ),
                        ),
                        width=6,
                        unit="percentunit",
                        thresholds=((None, RED), (0.9, AMBER), (1, GREEN)),
                        minimum=0,
                        maximum=1,
                    ),
                    Panel(
                        "Communes never tested",
                        "stat",
                        (
                            Query(
                                f"count(govops_commune_last_success_timestamp_seconds{{{p}}} == 0)"
                                " or vector(0)",
                                instant=True,
                            ),
                        ),
                        width=6,
                        thresholds=((None, GREEN), (1, RED)),
                    ),
                    Panel(
                        "Dossier sync lag",
                        "timeseries",
                        (Query(f"province:govops_dossier_sync_lag_seconds:max{{{p}}}", "lag"),),
                        unit="s",
                    ),
                    Panel(
                        "Certificate expiry",
                        "bargauge",
                        (
                            Query(
                                f"province_system:govops_cert_expiry_seconds:min{{{p}}}",
                                "{{system}}",
                                instant=True,
                            ),
                        ),
                        unit="s",
                        thresholds=((None, RED), (7 * 86400, AMBER), (21 * 86400, GREEN)),
                    ),
                    Panel(
                        "Cutover: seconds left to each deadline",
                        "table",
                        (Query(f"govops_cutover_deadline_seconds_left{{{p}}}", instant=True),),
                        width=24,
                        unit="s",
                    ),
                ),
            ),
        ),
    )


def system() -> Dashboard:
    s = 'system="$system"'
    return Dashboard(
        uid="govops-system",
        title="govops · System",
        description="One of the five systems across every province: who is up, which "
        "transactions fail, how fast they are.",
        variables=(
            _datasource_variable(),
            _query_variable(
                "system", "System", "label_values(province_system:govops_front_up:max, system)"
            ),
        ),
        rows=(
            Row(
                "Across provinces",
                (
                    Panel(
                        "Provinces where it is up",
                        "stat",
                        (
                            Query(
                                f"count(province_system:govops_front_up:max{{{s}}} == 1)"
                                " or vector(0)",
                                instant=True,
                            ),
                        ),
                        width=6,
                        thresholds=((None, RED), (34, GREEN)),
                    ),
                    Panel(
                        "Transactions failing now",
                        "stat",
                        (
                            Query(
                                f"count(province_system_check:govops_probe_success:max{{{s}}} == 0)"
                                " or vector(0)",
                                instant=True,
                            ),
                        ),
                        width=6,
                        thresholds=((None, GREEN), (1, RED)),
                    ),
                    Panel(
                        "Error ratio over 1h, per province",
                        "timeseries",
                        (
                            Query(
                                f"province_system:govops_slo_errors:ratio_rate1h{{{s}}}",
                                "{{province}} {{slo}}",
                            ),
                        ),
                        unit="percentunit",
                    ),
                    Panel(
                        "Front door, by province",
                        "state-timeline",
                        (Query(f"province_system:govops_front_up:max{{{s}}}", "{{province}}"),),
                        width=24,
                        height=16,
                        mappings=UP_DOWN,
                        thresholds=RED_BELOW_1,
                    ),
                    Panel(
                        "Slowest provinces (transaction duration, max over checks)",
                        "bargauge",
                        (
                            Query(
                                "topk(10, max by (province) "
                                f"(govops_probe_duration_seconds{{{s}}}))",
                                "{{province}}",
                                instant=True,
                            ),
                        ),
                        width=24,
                        unit="s",
                    ),
                ),
            ),
        ),
    )


DASHBOARDS = (national, province, system)


# -- Grafana's JSON model --------------------------------------------------------------------


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": q.expr,
            "legendFormat": q.legend or "__auto",
            "instant": q.instant,
            "range": not q.instant,
        }
        for i, q in enumerate(panel.queries)
    ]
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in panel.thresholds],
        },
        "mappings": list(panel.mappings),
        "color": {"mode": "thresholds"},
    }
    if panel.minimum is not None:
        defaults["min"] = panel.minimum
    if panel.maximum is not None:
        defaults["max"] = panel.maximum
    return {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": dict(panel.options),
    }


def to_json(d: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for row in d.rows:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid, y = pid + 1, y + 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > WIDTH:  # wrap to the next line of the grid
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel_json(panel, pid, x, y))
            pid, x, line_height = pid + 1, x + panel.width, max(line_height, panel.height)
        y += line_height
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": list(d.tags),
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "Asia/Ho_Chi_Minh",
        "templating": {"list": list(d.variables)},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


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
