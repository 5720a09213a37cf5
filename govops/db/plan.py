"""A point-in-time recovery, planned: which backup set, which WAL, where, what it stops, and
the exact commands — what `--dry-run` prints (text or `--json`) and what restore.py runs.

Pure: hosts and the backup are given; nothing here connects anywhere.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from govops.db.info import Backup
from govops.db.target import pg_time, shown

PG_VERSION = "15"
PG_CLUSTER = "main"
PG_BIN = f"/usr/lib/postgresql/{PG_VERSION}/bin"
PG_DATA = f"/var/lib/postgresql/{PG_VERSION}/{PG_CLUSTER}"
PG_SERVICE = f"postgresql@{PG_VERSION}-{PG_CLUSTER}"
# roles/postgresql's replication settings; an in-place restore names no synchronous standby in
# it (the standby cannot follow a restored primary), the standby's rebuild names it again.
REPLICATION_CONF = f"/etc/postgresql/{PG_VERSION}/{PG_CLUSTER}/conf.d/61-govops-replication.conf"
# The OS users pgBackRest runs as: the repository's owner on a backup host, postgres on a
# database host (the files it restores are the cluster's).
REPO_USER = "pgbackrest"
DB_USER = "postgres"
SCRATCH_ROOT = "/var/lib/govops-scratch"
# On a backup host the stanza's pg1/pg2 point at the database hosts (TLS): a restore there is
# a local one into the scratch path; pgBackRest carries these into the restore_command too.
# Measured with pgBackRest 2.45 against roles/pgbackrest's repository configuration: resetting
# the hosts and their types is enough (resetting pg2-path as well is refused: pg2's other TLS
# options still make it a configured pg2, which then needs its path).
LOCAL_RESET = (
    "--reset-pg1-host",
    "--reset-pg1-host-type",
    "--reset-pg2-host",
    "--reset-pg2-host-type",
)
INTO = ("scratch", "in-place")


@dataclass(frozen=True)
class Hosts:
    """A province's database hosts and its zone's repository, from the estate; `primary` is
    the one whose /etc/govops/db-role says primary (remote.find_primary)."""

    province: str
    stanza: str
    primary: str
    standby: str
    backup: str


@dataclass(frozen=True)
class RestorePlan:
    hosts: Hosts
    backup: Backup
    into: str  # scratch | in-place
    target_type: str  # time | name | default (the end of the archived WAL: --latest)
    target: str  # recovery_target_time (UTC) or the restore point's name
    target_time: datetime | None  # the time asked for (None for a named restore point)
    wal_max: str | None  # the newest WAL segment archived
    scratch_path: str = ""
    port: int | None = None  # the scratch cluster's port, once chosen
    reasons: tuple[str, ...] = field(default_factory=tuple)  # how the target was chosen

    @property
    def host(self) -> str:
        """Where the restore runs: the repository host (scratch) or the primary (in-place)."""
        return self.hosts.backup if self.into == "scratch" else self.hosts.primary

    @property
    def pg_path(self) -> str:
        return self.scratch_path if self.into == "scratch" else PG_DATA

    def restore_argv(self) -> list[str]:
        """The pgBackRest restore, as the user that owns the files it writes."""
        common = [
            f"--stanza={self.hosts.stanza}",
            f"--set={self.backup.label}",
            f"--type={self.target_type}",
        ]
        if self.target_type != "default":  # the end of the archive promotes by itself
            common += [f"--target={self.target}", "--target-action=promote"]
        if self.into == "scratch":
            return [
                "sudo", "-n", "-u", REPO_USER, "pgbackrest", *LOCAL_RESET,
                f"--pg1-path={self.scratch_path}", *common, "restore",
            ]  # fmt: skip
        return ["sudo", "-n", "-u", DB_USER, "pgbackrest", *common, "--delta", "restore"]

    def stops(self) -> list[str]:
        if self.into == "scratch":
            return [
                f"nothing: a new cluster on {self.hosts.backup} in {self.scratch_path} "
                "(archive_mode off: it cannot archive into the repository)"
            ]
        return [
            f"PostgreSQL on {self.hosts.primary} ({PG_SERVICE}): every system of "
            f"{self.hosts.province} loses its database until the restore has promoted",
            f"the standby {self.hosts.standby} stops following (a new timeline): rebuild it",
            f"every change after {self.shown_target} is discarded on {self.hosts.primary}",
        ]

    def commands(self) -> list[str]:
        restore = shlex.join(self.restore_argv())
        if self.into == "scratch":
            return [
                f"{self.hosts.backup}: {restore}",
                f"{self.hosts.backup}: start the scratch cluster (archive_mode=off, "
                f"port {self.port or 'a free one'}) and wait for its promotion",
            ]
        return [
            f"{self.hosts.primary}: sudo -n systemctl stop {PG_SERVICE}",
            f"{self.hosts.primary}: {restore}",
            f"{self.hosts.primary}: sudo -n systemctl start {PG_SERVICE}",
            f"{self.hosts.primary}: wait until pg_is_in_recovery() is false",
        ]

    @property
    def shown_target(self) -> str:
        if self.target_type == "default":
            return "the end of the archived WAL"
        if self.target_time is not None:
            return shown(self.target_time)
        return f"restore point {self.target!r}"

    def wal_needed(self) -> str:
        upto = (
            "the newest archived segment"
            if self.target_type == "default"
            else f"the segment holding {self.shown_target}"
        )
        have = f" (archived up to {self.wal_max})" if self.wal_max else ""
        return f"{self.backup.wal_start} → {upto}{have}"

    def rebuild_standby(self) -> str:
        """What to run after an in-place restore: the standby is on the abandoned timeline and
        follows the restored primary only once rebuilt from it (roles/postgresql), which also
        names it the synchronous standby again."""
        return (
            f"govops converge --limit 'tier_db:&province_{self.hosts.province}' "
            "-- -e postgresql_standby_rebuild=true"
        )

    def lines(self) -> list[str]:
        b = self.backup
        out = [
            f"province {self.hosts.province}: restore {self.into} to {self.shown_target}",
            *(f"  ({r})" for r in self.reasons),
            f"backup set: {b.label} ({b.type}, {shown(b.start)} → {shown(b.stop)}, "
            f"LSN {b.lsn_start} → {b.lsn_stop}, database {_size(b.size)}, "
            f"in the repository {_size(b.repo_size)})",
            f"WAL needed: {self.wal_needed()}",
            f"restores on: {self.host} into {self.pg_path}",
            "stops: " + "; ".join(self.stops()),
            "commands:",
            *(f"  {c}" for c in self.commands()),
        ]
        if self.into == "in-place":
            out.append("afterwards: rebuild the standby — " + self.rebuild_standby())
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "province": self.hosts.province,
            "stanza": self.hosts.stanza,
            "into": self.into,
            "host": self.host,
            "pg_path": self.pg_path,
            "target": {
                "type": self.target_type,
                "value": self.target,
                "time": self.target_time.isoformat() if self.target_time else None,
            },
            "backup": self.backup.as_dict(),
            "wal": {"from": self.backup.wal_start, "archived_max": self.wal_max},
            "stops": self.stops(),
            "commands": self.commands(),
            "rebuild_standby": self.rebuild_standby() if self.into == "in-place" else None,
            "reasons": list(self.reasons),
        }


def time_plan(
    hosts: Hosts,
    backup: Backup,
    target: datetime,
    into: str,
    wal_max: str | None,
    reasons: tuple[str, ...] = (),
) -> RestorePlan:
    return RestorePlan(
        hosts=hosts,
        backup=backup,
        into=into,
        target_type="time",
        target=pg_time(target),
        target_time=target,
        wal_max=wal_max,
        scratch_path=f"{SCRATCH_ROOT}/{hosts.province}",
        reasons=reasons,
    )


def latest_plan(hosts: Hosts, backup: Backup, into: str, wal_max: str | None) -> RestorePlan:
    """`--latest`: the newest backup, replayed to the end of the archived WAL — what a lost
    primary leaves (at most archive_timeout of writes, the RPO without a standby)."""
    return RestorePlan(
        hosts=hosts,
        backup=backup,
        into=into,
        target_type="default",
        target="",
        target_time=None,
        wal_max=wal_max,
        scratch_path=f"{SCRATCH_ROOT}/{hosts.province}",
        reasons=("--latest: the newest backup and every WAL segment archived after it",),
    )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
