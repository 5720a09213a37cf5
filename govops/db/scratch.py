"""A scratch cluster on the backup host: a restored data directory started apart from
everything — local connections only, archive_mode off (it must never push WAL into the
repository it came from), its own pg_hba, a port nobody uses — then stopped and deleted.

Debian keeps postgresql.conf and pg_hba.conf under /etc, not in the data directory: what the
restore brings back is the data and postgresql.auto.conf (pgBackRest's recovery settings);
the settings appended after those win over anything the primary had set with ALTER SYSTEM.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from govops.db.plan import PG_BIN, REPO_USER, SCRATCH_ROOT
from govops.db.remote import Result, Runner, check, q

# A socket-only user would need peer mapping; trust over a socket in a 0700 directory owned
# by the repository user admits only that user (and root).
HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
FREE_PORT = (
    'python3 -c \'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); '
    "print(s.getsockname()[1])'"
)


def settings(path: str, port: int) -> str:
    """What the scratch cluster runs with, after the restored settings."""
    return (
        "\n# govops scratch cluster: never archives, local only\n"
        f"port = {port}\n"
        "listen_addresses = '127.0.0.1'\n"
        f"unix_socket_directories = '{path}.run'\n"
        "archive_mode = off\n"
        "archive_command = ''\n"
        f"hba_file = '{path}.hba'\n"
        "ssl = off\n"
        "hot_standby = off\n"
        "max_wal_senders = 0\n"
        "wal_level = replica\n"
        "shared_preload_libraries = ''\n"
        "logging_collector = off\n"
        "synchronous_standby_names = ''\n"
    )


def prepare(runner: Runner, host: str, path: str, *, replace: bool) -> None:
    """The scratch root exists (owned by the repository user); `path` is free. A scratch
    cluster already there is stopped and removed only with `replace`."""
    u = REPO_USER
    check(
        runner.run(host, f"sudo -n install -d -o {u} -g {u} -m 0700 {q(SCRATCH_ROOT)}"),
        "scratch directory",
    )
    exists = runner.run(host, f"sudo -n test -e {q(path)}")
    if exists.exited == 0:
        if not replace:
            from govops.db.remote import RemoteError

            raise RemoteError(
                f"{host}: a scratch cluster is already in {path}: look at it, then run again "
                f"with --replace (or remove it: {drop_command(path)})"
            )
        drop(runner, host, path)


def free_port(runner: Runner, host: str) -> int:
    out = check(runner.run(host, FREE_PORT), "a free port").stdout.strip()
    return int(out.splitlines()[-1])


def configure(runner: Runner, host: str, path: str, port: int) -> None:
    u = REPO_USER
    conf = settings(path, port)
    script = (
        f"set -e; umask 077; cd {q(SCRATCH_ROOT)}; "
        f"printf %s {q(HBA)} > {q(path + '.hba')}; "
        f"install -d -m 0700 {q(path + '.run')}; "
        f"test -e {q(path + '/postgresql.conf')} || : > {q(path + '/postgresql.conf')}; "
        f"printf %s {q(conf)} >> {q(path + '/postgresql.auto.conf')}"
    )
    check(runner.run(host, f"sudo -n -u {u} bash -c {q(script)}"), "scratch settings")


def start(
    runner: Runner,
    host: str,
    path: str,
    port: int,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Start, then wait through recovery until promoted (hot_standby is off: no connection is
    accepted before). A server that exits meanwhile (a target the WAL does not reach) is an
    error with its log's last lines."""
    log = f"{path}.log"
    pg_ctl = f"sudo -n -u {REPO_USER} {PG_BIN}/pg_ctl -D {q(path)}"
    result = runner.run(host, f"{pg_ctl} -l {q(log)} -W start", timeout=120)
    deadline = time.monotonic() + timeout
    probe = f"{psql(path, port)} -c {q('SELECT pg_is_in_recovery()')}"
    while result.exited == 0:
        ready = runner.run(host, probe, timeout=60)
        if ready.exited == 0 and ready.stdout.strip().splitlines()[-1:] == ["f"]:
            return
        alive = runner.run(host, f"{pg_ctl} status >/dev/null 2>&1")
        if alive.exited != 0:
            result = Result(host, f"{pg_ctl} start", 1, "", "the server stopped during recovery")
            break
        if time.monotonic() > deadline:
            result = Result(host, f"{pg_ctl} start", 1, "", f"not promoted within {timeout:.0f} s")
            break
        sleep(2.0)
    tail = runner.run(host, f"sudo -n tail -n 12 {q(log)}").stdout
    if "recovery ended before configured recovery target was reached" in tail:
        tail += (
            "\nhint: the repository's WAL does not reach the target yet — the newest WAL is "
            "archived within archive_timeout (60 s) of being written; a target in the last "
            "minute may need a moment, or archiving is failing (govops db status)"
        )
    check(Result(host, result.command, result.exited, "", f"{result.stderr}\n{tail}"), "scratch")


def psql(path: str, port: int, database: str = "postgres") -> str:
    """psql as the repository user into the scratch cluster (CSV rows, no header)."""
    return (
        f"sudo -n -u {REPO_USER} psql -X -q --csv -t -v ON_ERROR_STOP=1 "
        f"-h {q(path + '.run')} -p {port} -U postgres -d {q(database)}"
    )


def psql_for_people(path: str, port: int) -> str:
    return f"sudo -u {REPO_USER} psql -h {q(path + '.run')} -p {port} -U postgres"


def drop_command(path: str) -> str:
    return (
        f"sudo -n -u {REPO_USER} {PG_BIN}/pg_ctl -D {q(path)} -m immediate stop; "
        f"sudo -n rm -rf {q(path)} {q(path + '.run')} {q(path + '.hba')} {q(path + '.log')}"
    )


def drop(runner: Runner, host: str, path: str) -> None:
    """Stop (if running) and delete; safe to run again."""
    stop = runner.run(
        host,
        f"sudo -n -u {REPO_USER} {PG_BIN}/pg_ctl -D {q(path)} status >/dev/null 2>&1 && "
        f"sudo -n -u {REPO_USER} {PG_BIN}/pg_ctl -D {q(path)} -m immediate -w stop || true",
    )
    check(stop, "scratch stop")
    check(
        runner.run(
            host,
            f"sudo -n rm -rf {q(path)} {q(path + '.run')} {q(path + '.hba')} {q(path + '.log')}",
        ),
        "scratch removal",
    )
