"""Backups, WAL archiving, the standby and the restore drill (`zone.yml`, group
govops.zone.backups): what a zone's Prometheus evaluates on its backup host and its databases.

Where the series come from (docs/backups.md and the contract of issue 18):
- the zone's backup host (`backup-<zone>`, node_exporter's textfile collector): pgBackRest's
  `info` as govops_backup_* {province, type}, and `govops db drill`'s govops_restore_drill_*;
- each database host's postgres_exporter (roles/postgres_exporter, queries.yaml.j2):
  govops_pg_archiver_* on the primary, govops_pg_replication_lag_seconds on a standby,
  govops_pg_replication_standbys_streaming on the primary, govops_pg_in_recovery on both.

Every alert keeps `province` (but the backup host's own freshness: it serves a zone), `zone`
and `host`, so that Alertmanager groups it with its province and a host down can mute what
follows from it (roles/alertmanager: a backup host down mutes its zone's backup alerts).
"""

from __future__ import annotations

from exporters.rules.conventions import (
    ARCHIVE_TIMEOUT_SECONDS,
    BACKUP_MAX_AGE_HOURS,
    BACKUP_METRICS_STALE_SECONDS,
    STANDBY_LAG_SECONDS,
    Alert,
    Record,
)

# Labels every alert here keeps (what the targets carry: govops/render/prometheus.py).
BY = "province, zone, host"
# A zone's backup host, by the estate's name for it (backup-<zone>).
BACKUP_HOSTS = 'job="node", host=~"backup-.+"'
# How long finished WAL waits for the archiver before a ticket: 5 × archive_timeout.
ARCHIVE_LAG_SECONDS = 5 * ARCHIVE_TIMEOUT_SECONDS
ARCHIVE_FAILED = f"max by ({BY}) (increase(govops_pg_archiver_failed_count[10m])) > 0"


def backup_records() -> list[Record]:
    """What the province dashboard's "Backups and standby" row draws (recording rules: the
    national server federates only these)."""
    return [
        Record(
            "province_type:govops_backup_age_seconds:min",
            "time() - max by (province, type) (govops_backup_last_success_timestamp_seconds)",
        ),
        Record(
            "province_host:govops_pg_archiver_failed:increase10m",
            "sum by (province, host) (increase(govops_pg_archiver_failed_count[10m]))",
        ),
        Record(
            "province_host:govops_pg_archiver_ready_segments:max",
            "max by (province, host) (govops_pg_archiver_ready_segments)",
        ),
        Record(
            "province_host:govops_pg_replication_lag_seconds:max",
            "max by (province, host) (govops_pg_replication_lag_seconds)",
        ),
        Record(
            "province_host:govops_pg_replication_standbys_streaming:max",
            "max by (province, host) (govops_pg_replication_standbys_streaming)",
        ),
        Record(
            "province:govops_restore_drill_success:min",
            "min by (province) (govops_restore_drill_success)",
        ),
    ]


def backup_alerts() -> list[Alert]:
    newest = f"max by ({BY}) (govops_backup_last_success_timestamp_seconds)"
    # A primary (govops_pg_in_recovery 0) whose province has no backup series at all: no
    # stanza, or the backup host's exporter lost it. Not the backup host down: that mutes it.
    no_series = (
        "max by (province, zone) (govops_pg_in_recovery == 0)\n"
        "unless on (province)\n"
        "max by (province) (govops_backup_last_success_timestamp_seconds)"
    )
    return [
        Alert(
            "GovopsBackupTooOld",
            f"time() - {newest} > {BACKUP_MAX_AGE_HOURS} * 3600\nor\n{no_series}",
            "15m",
            "warning",
            f"{{{{ $labels.province }}}} has no successful backup (full, diff or incr) for "
            f"more than {BACKUP_MAX_AGE_HOURS} hours.",
            "pgBackRest has not completed a backup of this province's stanza in the repository "
            "(or the backup host exports none for it). WAL archiving alone still allows a "
            "restore, but a long WAL replay from an old backup lengthens the RTO. Read "
            "`pgbackrest --stanza={{ $labels.province }} info` and the backup timers' journal on "
            "the database host.",
        ),
        Alert(
            "GovopsBackupRepositoryError",
            f"min by ({BY}) (govops_backup_repository_ok) == 0",
            "10m",
            "warning",
            "The backup repository of {{ $labels.province }} reports an error "
            "(pgBackRest stanza status not ok).",
            "`pgbackrest info` on {{ $labels.host }} gives the stanza a status other than ok: "
            "missing stanza, no backup, or the repository cannot be read (cipher passphrase, "
            "permissions, disk). New backups and restores of the province may fail.",
        ),
        Alert(
            "GovopsBackupMetricsStale",
            f"time() - max by (zone, host) (govops_backup_metrics_timestamp_seconds)"
            f" > {BACKUP_METRICS_STALE_SECONDS}",
            "2m",
            "warning",
            "The backup status of {{ $labels.host }} is {{ $value | humanizeDuration }} old: "
            "backup alerts of its zone are blind.",
            "The script that writes pgBackRest's `info` for node_exporter (a systemd timer, "
            "every minute) has not succeeded for "
            f"{BACKUP_METRICS_STALE_SECONDS // 60} minutes: the backup ages and repository "
            "status shown are old. Check the timer's journal on the backup host.",
        ),
        Alert(
            "GovopsWalArchiveFailing",
            f"{ARCHIVE_FAILED}\nand on ({BY})\n"
            f"max by ({BY}) (govops_pg_archiver_last_archived_age_seconds)"
            f" > {ARCHIVE_LAG_SECONDS}",
            "2m",
            "critical",
            "WAL archiving of {{ $labels.province }} fails: data written since the last "
            "archived segment would be lost with the primary.",
            "PostgreSQL's archive_command (pgBackRest archive-push to the zone's backup host) "
            "failed in the last 10 minutes and nothing was archived for "
            f"{ARCHIVE_LAG_SECONDS // 60} minutes: the recovery point objective grows every "
            "minute. Read the PostgreSQL log on {{ $labels.host }} and `pgbackrest check`.",
        ),
        Alert(
            "GovopsWalArchiveLagging",
            f"max by ({BY}) (govops_pg_archiver_last_archived_age_seconds)"
            f" > {ARCHIVE_LAG_SECONDS}\n"
            f"and on ({BY})\n"
            f"max by ({BY}) (govops_pg_archiver_ready_segments) > 0\n"
            f"unless on ({BY})\n({ARCHIVE_FAILED})",
            "5m",
            "warning",
            "Finished WAL of {{ $labels.province }} waits for the archiver: the last segment "
            "was archived {{ $value | humanizeDuration }} ago.",
            "WAL segments are ready (pg_wal/archive_status) but archiving is slow or stuck "
            "without failing. With writes, archive_timeout "
            f"({ARCHIVE_TIMEOUT_SECONDS} s) finishes a segment every minute, so more than "
            f"{ARCHIVE_LAG_SECONDS // 60} minutes means the RPO is longer than promised. An "
            "idle primary has nothing ready and stays silent.",
        ),
        Alert(
            "GovopsStandbyNotStreaming",
            f"max by ({BY}) (govops_pg_replication_standbys_streaming) == 0",
            "5m",
            "critical",
            "No standby streams from the database of {{ $labels.province }}: procedures "
            "commits block (synchronous) and a failover is impossible.",
            "The primary {{ $labels.host }} has had no streaming standby for 5 minutes. The "
            "procedures system commits synchronously: its dossiers wait for a standby. Start "
            "the standby's PostgreSQL or rebuild it (playbooks/db.yml); to unblock procedures "
            "meanwhile, converge the province's databases with -e postgresql_synchronous_off=true.",
        ),
        Alert(
            "GovopsStandbyLagHigh",
            f"max by ({BY}) (govops_pg_replication_lag_seconds) > {STANDBY_LAG_SECONDS}",
            "5m",
            "warning",
            "The standby {{ $labels.host }} of {{ $labels.province }} replays "
            "{{ $value | humanizeDuration }} behind its primary.",
            f"Replay has lagged more than {STANDBY_LAG_SECONDS} s for 5 minutes: a failover "
            "now would take that long to catch up (asynchronous systems could lose it). "
            "Check the standby's disk and CPU and its PostgreSQL log.",
        ),
        Alert(
            "GovopsRestoreDrillFailed",
            f"min by ({BY}) (govops_restore_drill_success) == 0",
            "1m",
            "warning",
            "The last restore drill of {{ $labels.province }} failed: its backup is not "
            "proven restorable.",
            "`govops db drill` restored the latest backup into a scratch instance and the "
            "checks (row counts, checksum) failed, or the restore did. The cutover's readiness "
            "check fails with it. `govops db drill --province {{ $labels.province }}` says which.",
        ),
        Alert(
            "GovopsBackupHostDown",
            f"up{{{BACKUP_HOSTS}}} == 0",
            "5m",
            "critical",
            "Backup host {{ $labels.host }} is down: WAL archiving and backups of every "
            "province of zone {{ $labels.zone }} fail.",
            "node_exporter on the zone's pgBackRest repository does not answer for 5 minutes. "
            "The provinces' archive_command fails (their RPO grows) until it is back; their "
            "backup and archive alerts are muted meanwhile (one page for the zone).",
        ),
    ]
