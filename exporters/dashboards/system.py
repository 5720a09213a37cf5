"""One system's dashboard across every province: who is up, which transactions fail, how
fast they are."""

from __future__ import annotations

from exporters.dashboards.model import (
    GREEN,
    RED,
    RED_BELOW_1,
    UP_DOWN,
    Dashboard,
    Panel,
    Query,
    Row,
    datasource_variable,
    query_variable,
)


def system() -> Dashboard:
    s = 'system="$system"'
    return Dashboard(
        uid="govops-system",
        title="govops · System",
        description="One of the five systems across every province: who is up, which "
        "transactions fail, how fast they are.",
        variables=(
            datasource_variable(),
            query_variable(
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
