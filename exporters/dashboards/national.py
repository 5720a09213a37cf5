"""The national readiness dashboard: every province at a glance (federated recording rules)."""

from __future__ import annotations

from exporters.dashboards.model import (
    AMBER,
    GREEN,
    RED,
    RED_BELOW_1,
    UP_DOWN,
    Dashboard,
    Panel,
    Query,
    Row,
    datasource_variable,
)


def national() -> Dashboard:
    return Dashboard(
        uid="govops-national",
        title="govops · National readiness",
        description="The 34 provinces at a glance: systems up, the dispatch's readiness checks, "
        "communes tested, cutover deadlines.",
        variables=(datasource_variable(),),
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
