"""Lab proofs of issue 18 on the session's converged lab: point-in-time recovery and failover.

1. PITR: in Huế's procedures database, a first set of dossiers is written, a backup taken, a
   point in time noted, a second set written and archived; then the primary's data directory is
   destroyed and `govops db restore --to <the point> --into in-place` brings back exactly the
   first set (none of the second). The standby is rebuilt after it (`govops converge`).
2. Failover: a writer on `monitor` submits dossiers to Huế's procedures system through its
   front (what a citizen's submission does) and records each acknowledged one; the primary's
   container is killed (a sudden loss, nothing flushed); `playbooks/failover.yml` promotes the
   standby and points the systems at it; every dossier acknowledged before the loss is in the
   new primary (synchronous commit for the procedures database), and the old primary comes back
   as the new standby. The lab's prober runs all along. Times are printed (the RTO by hand).

Named so that it runs after the other lab proofs: it leaves Huế's primary on the other host.
On a running `make lab` instead of a throwaway lab: GOVOPS_LAB_PROOF_ENV=lab.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import ConvergedLab, existing_lab
from tests.integration.test_runbook_lab import govops

PROVINCE, PRIMARY, STANDBY = "hue", "hue-db", "hue-db-standby"
BACKUP = "backup-lab"
REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.lab, pytest.mark.lab_proof]


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> ConvergedLab:
    env = os.environ.get("GOVOPS_LAB_PROOF_ENV")
    return existing_lab(env) if env else request.getfixturevalue("converged_lab")


def psql(lab: ConvergedLab, host: str, sql: str, db: str = "procedures") -> str:
    out = lab.exec(host, "runuser", "-u", "postgres", "--", "psql", "-XAtq", "-d", db, "-c", sql)
    assert out.returncode == 0, f"psql on {host} failed: {out.stderr}"
    return out.stdout.strip()


def until(what: str, predicate: Callable[[], bool], timeout: float = 180) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def archived(lab: ConvergedLab, host: str) -> int:
    return int(psql(lab, host, "SELECT archived_count FROM pg_stat_archiver", db="postgres"))


def role_of(lab: ConvergedLab, host: str) -> str:
    out = lab.exec(host, "cat", "/etc/govops/db-role")
    return str(json.loads(out.stdout)["role"]) if out.returncode == 0 else "unknown"


def streaming(lab: ConvergedLab, primary: str) -> bool:
    sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
    return psql(lab, primary, sql, db="postgres") == "1"


def test_pitr_brings_back_exactly_the_first_set(lab: ConvergedLab) -> None:
    assert role_of(lab, PRIMARY) == "primary"
    psql(
        lab,
        PRIMARY,
        "CREATE TABLE IF NOT EXISTS pitr_proof (id int PRIMARY KEY, batch text NOT NULL);"
        "TRUNCATE pitr_proof;"
        "INSERT INTO pitr_proof SELECT g, 'first' FROM generate_series(1, 500) g",
    )
    backup = lab.exec(
        BACKUP,
        *("runuser", "-u", "pgbackrest", "--", "pgbackrest", f"--stanza={PROVINCE}"),
        *("--type=incr", "backup"),
        timeout=600,
    )
    assert backup.returncode == 0, f"backup failed: {backup.stdout}{backup.stderr}"
    time.sleep(1)
    point = psql(lab, PRIMARY, "SELECT to_char(now(), 'YYYY-MM-DD\"T\"HH24:MI:SS.USOF')")
    time.sleep(1)
    psql(lab, PRIMARY, "INSERT INTO pitr_proof SELECT g, 'second' FROM generate_series(501, 900) g")
    before = archived(lab, PRIMARY)
    psql(lab, PRIMARY, "SELECT pg_switch_wal()", db="postgres")
    until("the second set's WAL to be archived", lambda: archived(lab, PRIMARY) > before)

    # The disaster: PostgreSQL stopped hard and its data directory emptied.
    lab.exec(PRIMARY, "pg_ctlcluster", "15", "main", "stop", "-m", "immediate")
    wiped = lab.exec(PRIMARY, "sh", "-c", "rm -rf /var/lib/postgresql/15/main/*")
    assert wiped.returncode == 0, wiped.stderr

    args = ["db", "restore", "--env", lab.lab.env, "--province", PROVINCE, "--to", point]
    dry = govops(lab, *args, "--into", "in-place", "--dry-run", timeout=300)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    started = time.monotonic()
    restored = govops(lab, *args, "--into", "in-place", "--yes", timeout=900)
    took = time.monotonic() - started
    assert restored.returncode == 0, restored.stdout + restored.stderr
    counts = psql(lab, PRIMARY, "SELECT batch, count(*) FROM pitr_proof GROUP BY 1 ORDER BY 1")
    assert counts == "first|500", f"restored to {point}: expected only the first set, got {counts}"
    print(f"\nPITR in place to {point}: {took:.1f} s")

    # The standby followed the old timeline: converge rebuilds it from the restored primary.
    result = lab.converge(
        limit=f"tier_db:&province_{PROVINCE}", extra_args=("-e", "postgresql_standby_rebuild=true")
    )
    assert result.ok, f"rebuilding the standby failed on {result.failed_hosts}"
    until("the standby to stream again", lambda: streaming(lab, PRIMARY))
    # The restore's recovery target is gone from the settings the standby was copied from: a
    # commit after the target reaches the standby, which stays a standby (it once promoted
    # itself there, built from a primary that still had the target).
    conf = lab.exec(PRIMARY, "cat", "/var/lib/postgresql/15/main/postgresql.auto.conf").stdout
    assert "recovery_target" not in conf, conf
    psql(lab, PRIMARY, "INSERT INTO pitr_proof VALUES (1000, 'after the restore')")
    until(
        "the standby to replay a commit made after the target",
        lambda: psql(lab, STANDBY, "SELECT count(*) FROM pitr_proof WHERE id = 1000") == "1",
        timeout=60,
    )
    assert psql(lab, STANDBY, "SELECT pg_is_in_recovery()", db="postgres") == "t"
    psql(lab, PRIMARY, "DROP TABLE pitr_proof")


STOP = "/tmp/govops-failover-proof.stop"
WRITER = (
    f"STOP = {STOP!r}\n"
    + r"""
import json, os, ssl, sys, time, urllib.request
url, commune, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
ctx = ssl.create_default_context(cafile="/etc/ssl/govops/ca.crt")
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end and not os.path.exists(STOP):
    n += 1
    body = json.dumps({"commune_code": commune, "procedure_code": "failover-proof",
                       "applicant": {"name": f"failover proof {n}", "synthetic": True}}).encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
            if resp.status == 201:
                print("ACK", json.load(resp)["id"], time.time(), flush=True)
    except Exception as exc:
        print("ERR", type(exc).__name__, time.time(), flush=True)
        time.sleep(0.2)
"""
)


def test_failover_loses_no_acknowledged_dossier(lab: ConvergedLab) -> None:
    until("the standby to stream", lambda: streaming(lab, PRIMARY))
    commune = lab.province(PROVINCE)["communes"][0]["code"]
    lab.exec("monitor", "rm", "-f", STOP)
    writer = subprocess.Popen(
        [
            *(lab.lab.podman().binary, "exec", "-i", lab.container("monitor"), "python3", "-"),
            *("https://hue-procedures/api/dossiers", commune, "900"),
        ],
        env=lab.lab.podman().env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    writer.stdin.write(WRITER)
    writer.stdin.close()
    acked: list[tuple[str, float]] = []
    errors: list[float] = []

    def read_some(seconds: float) -> None:
        end = time.monotonic() + seconds
        assert writer.stdout is not None
        while time.monotonic() < end:
            line = writer.stdout.readline()
            if not line:
                return
            kind, what, at = line.split()
            (acked.append((what, float(at))) if kind == "ACK" else errors.append(float(at)))

    read_some(10)
    assert len(acked) > 5, f"the writer got no acknowledgement before the loss: {errors}"
    lab.lab.podman().run("kill", lab.container(PRIMARY))
    killed_at = time.time()  # once the kill returned: an answer before it may still be acked
    # The writer's lines wait in its pipe (a few bytes a second) while the play runs.
    output: list[str] = []
    failover = lab.converge(
        playbook="failover.yml", extra_args=("-e", f"province={PROVINCE}"), echo=output.append
    )
    read_some(30)
    lab.exec("monitor", "touch", STOP)
    read_some(10)
    writer.wait(timeout=60)
    tail = "\n".join(output[-80:])
    assert failover.ok, f"failover failed on {failover.failed_hosts}:\n{tail}"
    assert role_of(lab, STANDBY) == "primary"
    after = [at for _, at in acked if at > killed_at]
    assert after, "the procedures system accepted no dossier after the failover"
    # The outage ends at the first dossier accepted after one was refused (bench/backup.py's
    # measure): an answer already past the database at the kill is no recovery.
    refused = [at for at in errors if at > killed_at]
    outage = refused[0] if refused else killed_at
    back = min((at for at in after if at > outage), default=min(after))
    print(
        f"\nfailover: primary lost → dossiers accepted again in {back - killed_at:.1f} s "
        f"({len(refused)} submissions refused meanwhile, {len(acked)} acknowledged in all)"
    )

    before = [i for i, at in acked if at <= killed_at]
    ids = ",".join(f"'{i}'" for i in before)
    found = psql(lab, STANDBY, f"SELECT count(*) FROM dossiers WHERE id IN ({ids})")
    assert int(found) == len(before), f"{len(before) - int(found)} acknowledged dossiers lost"

    # The old primary's host comes back: converge makes it the new standby.
    lab.lab.podman().run("start", lab.container(PRIMARY))
    result = lab.converge(limit=f"province_{PROVINCE}")
    assert result.ok, f"rebuilding the old primary failed on {result.failed_hosts}"
    assert role_of(lab, PRIMARY) == "standby"
    until("the old primary to stream as the standby", lambda: streaming(lab, STANDBY))
