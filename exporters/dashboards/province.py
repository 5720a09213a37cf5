"""One province's dashboard: its five systems, each synthetic transaction, communes, sync
lag, certificates, error budgets, and its database's backups and standby."""

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

# The alert thresholds the panels colour by: exporters/rules/conventions.py's (the engines do not
# import one another; tests/unit/test_dashboards.py keeps the two equal).
BACKUP_MAX_AGE_HOURS = 26
STANDBY_LAG_SECONDS = 60


def province() -> Dashboard:
    p = 'province="$province"'
    return Dashboard(
        uid="govops-province",
        title="govops · Province",
        description="One province: its five systems, each synthetic transaction, communes, "
        "sync lag, certificates, error budgets, backups and standby.",
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
            Row(
                "Backups and standby",
                (
                    Panel(
                        "Last successful backup, per type",
                        "bargauge",
                        (
                            Query(
                                f"province_type:govops_backup_age_seconds:min{{{p}}}",
                                "{{type}}",
                                instant=True,
                            ),
                        ),
                        width=8,
                        unit="s",
                        description="Age of the newest backup of each type in the zone's "
                        f"repository (pgBackRest info). Red past {BACKUP_MAX_AGE_HOURS} h: "
                        "GovopsBackupTooOld when no type is younger.",
                        thresholds=((None, GREEN), (BACKUP_MAX_AGE_HOURS * 3600, RED)),
                    ),
                    Panel(
                        "WAL archiving",
                        "timeseries",
                        (
                            Query(
                                f"province_host:govops_pg_archiver_failed:increase10m{{{p}}}",
                                "failures in 10m ({{host}})",
                            ),
                            Query(
                                f"province_host:govops_pg_archiver_ready_segments:max{{{p}}}",
                                "segments waiting ({{host}})",
                            ),
                        ),
                        width=8,
                        description="The primary's archive_command failures and its finished "
                        "WAL segments not archived yet (GovopsWalArchiveFailing, "
                        "GovopsWalArchiveLagging).",
                    ),
                    Panel(
                        "Restore drill",
                        "stat",
                        (
                            Query(
                                f"province:govops_restore_drill_success:min{{{p}}}",
                                "last drill",
                                instant=True,
                            ),
                        ),
                        width=8,
                        description="The last `govops db drill` (latest backup restored into a "
                        "scratch instance, counts and checksum checked). No value: never run.",
                        mappings=OK_FAIL,
                        thresholds=RED_BELOW_1,
                    ),
                    Panel(
                        "Standby replay lag",
                        "timeseries",
                        (
                            Query(
                                f"province_host:govops_pg_replication_lag_seconds:max{{{p}}}",
                                "{{host}}",
                            ),
                        ),
                        width=16,
                        unit="s",
                        description="How far the standby's replay is behind (0: it replayed "
                        f"all it received). GovopsStandbyLagHigh past {STANDBY_LAG_SECONDS} s.",
                    ),
                    Panel(
                        "Standbys streaming",
                        "stat",
                        (
                            Query(
                                "province_host:govops_pg_replication_standbys_streaming:max"
                                f"{{{p}}}",
                                "{{host}}",
                                instant=True,
                            ),
                        ),
                        width=8,
                        description="Standbys streaming from the primary (host). 0: procedures "
                        "commits block (GovopsStandbyNotStreaming).",
                        thresholds=RED_BELOW_1,
                    ),
                ),
            ),
        ),
    )
