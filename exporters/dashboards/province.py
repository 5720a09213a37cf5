"""One province's dashboard: its five systems, each synthetic transaction, communes, sync
lag, certificates and error budgets."""

from __future__ import annotations

from exporters.dashboards.model import (
    AMBER,
    GREEN,
    OK_FAIL,
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


def province() -> Dashboard:
    p = 'province="$province"'
    return Dashboard(
        uid="govops-province",
        title="govops · Province",
        description="One province: its five systems, each synthetic transaction, communes, "
        "sync lag, certificates and error budgets.",
        variables=(
            datasource_variable(),
            query_variable(
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
