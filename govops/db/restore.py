"""Point-in-time recovery (`govops db restore`), carried out from a plan (plan.py).

scratch: on the zone's backup host, a new cluster in /var/lib/govops-scratch/<province>,
recovered to the target and promoted, left running on a free local port for the operator
(pg_dump a table, compare, copy rows back); removed with --replace next time or by hand.

in-place: on the current primary, PostgreSQL stopped, pgBackRest's `restore --delta` to the
target, started, waited for until promoted. The standby is then on the abandoned timeline: it
must be rebuilt (printed). Before the start, the primary is told to wait for no synchronous
standby: with the procedures database's commits synchronous, every dossier would otherwise
hang until the rebuild. Once promoted, the recovery target pgBackRest wrote into
postgresql.auto.conf is reset: pg_basebackup copies that file, and a standby built from it
would stop at the same target and promote itself (seen in the lab: two primaries).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from govops.db import scratch
from govops.db.drill import primary_psql
from govops.db.plan import PG_SERVICE, REPLICATION_CONF, RestorePlan
from govops.db.remote import RemoteError, Runner, check, q

RECOVERY_TIMEOUT = 3600.0
# What pgBackRest's restore writes besides restore_command (which a standby may keep).
RECOVERY_TARGET_SETTINGS = (
    "recovery_target",
    "recovery_target_action",
    "recovery_target_inclusive",
    "recovery_target_lsn",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_timeline",
    "recovery_target_xid",
)


def restore_scratch(
    runner: Runner, plan: RestorePlan, progress: Callable[[str], None], *, replace: bool
) -> list[str]:
    """Restore, configure, start; how to reach the cluster (lines to print)."""
    host, path = plan.hosts.backup, plan.scratch_path
    scratch.prepare(runner, host, path, replace=replace)
    progress(f"{host}: restoring {plan.backup.label} to {plan.shown_target} into {path}")
    check(runner.run(host, q(*plan.restore_argv()), timeout=RECOVERY_TIMEOUT), "pgBackRest restore")
    port = plan.port or scratch.free_port(runner, host)
    scratch.configure(runner, host, path, port)
    progress(f"{host}: recovering (replaying WAL to the target), port {port}")
    scratch.start(runner, host, path, port, RECOVERY_TIMEOUT)
    return [
        f"scratch cluster of {plan.hosts.province} at {plan.shown_target} is running on {host}:",
        f"  on {host}: {scratch.psql_for_people(path, port)}",
        f"  (or TCP 127.0.0.1:{port} on {host}, user postgres, no password)",
        f"  from here: ssh -L {port}:127.0.0.1:{port} {host}, "
        f"then psql -h 127.0.0.1 -p {port} -U postgres",
        f"  remove it: on {host}: {scratch.drop_command(path)}",
    ]


def restore_in_place(
    runner: Runner,
    plan: RestorePlan,
    progress: Callable[[str], None],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    host = plan.hosts.primary
    progress(f"{host}: stopping {PG_SERVICE}")
    check(runner.run(host, f"sudo -n systemctl stop {PG_SERVICE}", timeout=300), "stop")
    progress(f"{host}: restoring {plan.backup.label} to {plan.shown_target} (--delta)")
    check(runner.run(host, q(*plan.restore_argv()), timeout=RECOVERY_TIMEOUT), "pgBackRest restore")
    progress(f"{host}: no synchronous standby until the standby is rebuilt")
    no_sync = (
        f"sudo -n sed -i -E \"s/^synchronous_standby_names *=.*/synchronous_standby_names = ''"
        f'  # govops db restore: none until the standby is rebuilt/" {q(REPLICATION_CONF)}'
    )
    check(runner.run(host, f"test ! -e {q(REPLICATION_CONF)} || {no_sync}"), "synchronous off")
    progress(f"{host}: starting {PG_SERVICE}; replaying WAL to the target")
    check(runner.run(host, f"sudo -n systemctl start {PG_SERVICE}", timeout=600), "start")
    deadline = time.time() + RECOVERY_TIMEOUT
    probe = f"{primary_psql()} -c {q('SELECT pg_is_in_recovery()')}"
    while True:
        result = runner.run(host, probe, timeout=60)
        if result.exited == 0 and result.stdout.strip().splitlines()[-1:] == ["f"]:
            break
        if time.time() > deadline:
            raise RemoteError(
                f"{host}: still in recovery after {RECOVERY_TIMEOUT:.0f} s (journalctl -u "
                f"{PG_SERVICE}; /var/log/postgresql/)"
            )
        sleep(5.0)
    progress(f"{host}: promoted; resetting the recovery target in postgresql.auto.conf")
    # One -c each: ALTER SYSTEM refuses to run inside psql's implicit transaction.
    resets = " ".join(f"-c {q(f'ALTER SYSTEM RESET {name}')}" for name in RECOVERY_TARGET_SETTINGS)
    check(runner.run(host, f"{primary_psql()} {resets}", timeout=60), "reset recovery target")
    return [
        f"{host}: restored to {plan.shown_target} and promoted; the systems of "
        f"{plan.hosts.province} reconnect on their own",
        "now rebuild the standby: " + plan.rebuild_standby(),
    ]
