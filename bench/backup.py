"""Benchmark issue 18's RPO and RTO on a converged lab (`make lab`, or `govops lab up` + converge).

    .venv/bin/python bench/backup.py                        # the lab `lab`, province hue, 5 GiB
    .venv/bin/python bench/backup.py --province hue --size-gib 1 --env lab

What it measures, in this order, on one province of a running lab (it repairs the province at
the end: both database hosts running, the primary where the failover left it, the standby
streaming; the lab's other provinces are not touched):
  1. the price of synchronous commit: pgbench inserts, one client, into the procedures database
     (commits wait for the standby) and into the documents database (local), mean latency each;
  2. a province database of SIZE GiB (pgbench's tables in the procedures database), then a
     full backup of it (time, repository size);
  3. RTO by restore: the primary's container killed, started again with its data directory
     emptied (a lost disk), its base converged (`--tags common`: the lab's restart loses the
     host's /etc/hosts and resolver), `govops db restore --into in-place` to the moment of the
     loss; time from the loss until the procedures system accepts a dossier again (through
     its front);
     then the standby rebuilt (`govops converge`);
  4. RPO and RTO by failover: a writer submitting dossiers through the procedures front, the
     primary killed, `govops converge --playbook failover.yml`; acknowledged dossiers missing
     from the new primary (0 expected), time until dossiers are accepted again;
  5. RPO with WAL archiving alone (the state the failover leaves: no standby yet): a writer
     committing rows into the documents database on the primary, the primary killed, the
     repository restored to the end of its archive into a scratch cluster; rows and seconds of
     writes lost.
Figures are printed as a table and written as JSON (--json FILE). Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
GOVOPS = [sys.executable, "-m", "govops.cli"]
PSQL = ["runuser", "-u", "postgres", "--", "psql", "-XAtq"]
PGBENCH = ["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pgbench"]
console = Console(stderr=True)

# A dossier a citizen would submit, through the procedures front, from `monitor`; one line per
# answer: "ACK <id> <epoch>" or "ERR <reason> <epoch>". Stops when STOP exists.
STOP = "/tmp/govops-bench-writer.stop"
HTTP_WRITER = (
    f"STOP = {STOP!r}\n"
    + r"""
import json, os, ssl, sys, time, urllib.request
url, commune = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile="/etc/ssl/govops/ca.crt")
n = 0
while not os.path.exists(STOP):
    n += 1
    body = json.dumps({"commune_code": commune, "procedure_code": "bench-backup",
                       "applicant": {"name": f"bench {n}", "synthetic": True}}).encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
            print("ACK", json.load(resp)["id"], time.time(), flush=True)
    except Exception as exc:
        print("ERR", type(exc).__name__, time.time(), flush=True)
        time.sleep(0.2)
"""
)
# Rows committed on the primary itself (the documents database: asynchronous), one line each.
SQL_WRITER = (
    f"STOP = {STOP!r}\n"
    + r"""
import os, time, psycopg
conn = psycopg.connect("dbname=documents user=postgres host=/var/run/postgresql", autocommit=True)
conn.execute("CREATE TABLE IF NOT EXISTS bench_rpo"
             " (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")
while not os.path.exists(STOP):
    row = conn.execute("INSERT INTO bench_rpo (at) VALUES (now()) RETURNING id").fetchone()
    print("ACK", row[0], time.time(), flush=True)
    time.sleep(0.05)
"""
)


class BenchError(Exception):
    pass


@dataclass
class Lab:
    env: str
    province: str

    @property
    def label(self) -> str:
        return self.province.replace("_", "-")

    def container(self, host: str) -> str:
        return f"{self.env}-{host}"

    def podman(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        proc = subprocess.run(
            ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise BenchError(f"podman {' '.join(args[:3])} …: {proc.stderr.strip()[-800:]}")
        return proc.stdout

    def sh(self, host: str, *argv: str, timeout: float = 600, check: bool = True) -> str:
        return self.podman("exec", self.container(host), *argv, timeout=timeout, check=check)

    def psql(self, host: str, sql: str, db: str = "postgres", check: bool = True) -> str:
        return self.sh(host, *PSQL, "-d", db, "-c", sql, check=check).strip()

    def govops(self, *args: str, timeout: float = 3600) -> str:
        proc = subprocess.run(
            [*GOVOPS, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            raise BenchError(
                f"govops {' '.join(args)} exited {proc.returncode}:\n"
                f"{(proc.stdout + proc.stderr)[-3000:]}"
            )
        return proc.stdout

    def role(self, host: str) -> str:
        out = self.sh(host, "cat", "/etc/govops/db-role", check=False)
        try:
            return str(json.loads(out)["role"])
        except (ValueError, KeyError):
            return "unknown"

    def primary(self) -> str:
        hosts = [f"{self.label}-db", f"{self.label}-db-standby"]
        for h in hosts:
            if self.running(h) and self.psql(h, "SELECT pg_is_in_recovery()", check=False) == "f":
                return h
        raise BenchError(f"no running primary among {hosts}")

    def other(self, host: str) -> str:
        a, b = f"{self.label}-db", f"{self.label}-db-standby"
        return b if host == a else a

    def running(self, host: str) -> bool:
        out = self.podman("inspect", "-f", "{{.State.Running}}", self.container(host), check=False)
        return out.strip() == "true"

    def streaming(self, primary: str) -> bool:
        sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        return self.psql(primary, sql, check=False) == "1"


@dataclass
class Writer:
    """A writer in a lab host, its acknowledgements read as they come."""

    lab: Lab
    host: str
    script: str
    args: tuple[str, ...] = ()
    acks: list[tuple[str, float]] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)

    def start(self) -> Writer:
        self.lab.sh(self.host, "rm", "-f", STOP)
        self.proc = subprocess.Popen(
            ["podman", "exec", "-i", self.lab.container(self.host), "python3", "-", *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(self.script)
        self.proc.stdin.close()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "ACK":
                self.acks.append((parts[1], float(parts[2])))
            elif len(parts) == 3:
                self.errors.append(float(parts[2]))

    def refused_after(self, moment: float) -> list[float]:
        return sorted(at for at in self.errors if at > moment)

    def stop(self) -> None:
        self.lab.sh(self.host, "touch", STOP, check=False)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.reader.join(timeout=5)


def until(what: str, predicate: Callable[[], bool], timeout: float = 900) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.5)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


def say(text: str) -> None:
    console.print(f"[bold]bench/backup[/]: {text}")


def latency(lab: Lab, primary: str, seconds: int) -> dict[str, float]:
    lab.psql(primary, "CREATE TABLE IF NOT EXISTS bench_latency (at timestamptz)", db="procedures")
    lab.psql(primary, "CREATE TABLE IF NOT EXISTS bench_latency (at timestamptz)", db="documents")
    lab.sh(primary, "sh", "-c", "echo 'INSERT INTO bench_latency VALUES (now());' > /tmp/bench.sql")
    out = {}
    for db in ("procedures", "documents"):
        text = lab.sh(
            primary, *PGBENCH, "-n", "-c", "1", "-T", str(seconds), "-f", "/tmp/bench.sql", db
        )
        found = re.search(r"latency average = ([0-9.]+) ms", text)
        if not found:
            raise BenchError(f"pgbench printed no latency:\n{text}")
        out[db] = float(found.group(1))
        lab.psql(primary, "DROP TABLE bench_latency", db=db)
    return out


def load(lab: Lab, primary: str, gib: float) -> tuple[float, int]:
    scale = max(1, round(gib * 1024 / 15.3))  # pgbench: ~15.3 MiB a unit of scale with indexes
    started = time.monotonic()
    lab.sh(
        primary, *PGBENCH, "-i", "-q", "-s", str(scale), "-I", "dtGvp", "procedures", timeout=7200
    )
    took = time.monotonic() - started
    size = int(lab.psql(primary, "SELECT pg_database_size('procedures')"))
    return took, size


def pgbackrest(lab: Lab, *args: str, timeout: float = 600) -> str:
    """pgBackRest on the province's zone's backup host, as the repository user."""
    backup = f"backup-{province_vars(lab)['zone']}"
    return lab.sh(
        backup, "runuser", "-u", "pgbackrest", "--", "pgbackrest",
        f"--stanza={lab.province}", *args, timeout=timeout,
    )  # fmt: skip


def full_backup(lab: Lab) -> tuple[float, str]:
    started = time.monotonic()
    pgbackrest(lab, "--type=full", "backup", timeout=7200)
    took = time.monotonic() - started
    newest = json.loads(pgbackrest(lab, "--output=json", "info"))[0]["backup"][-1]
    return took, f"{newest['info']['repository']['delta'] / 2**30:.2f} GiB in the repository"


def province_vars(lab: Lab) -> dict[str, Any]:
    """The province's rendered variables (group_vars/province_<codename>/province.yml)."""
    path = (
        REPO / "inventories" / lab.env / "group_vars" / f"province_{lab.province}" / "province.yml"
    )
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))["govops_province"]
    return data


def commune(lab: Lab) -> str:
    return str(province_vars(lab)["communes"][0]["code"])


def accepts_dossiers(lab: Lab) -> Writer:
    url = f"https://{lab.label}-procedures/api/dossiers"
    return Writer(lab, "monitor", HTTP_WRITER, (url, commune(lab))).start()


def first_ack_after(writer: Writer, moment: float, timeout: float = 1800) -> float:
    until(
        "the procedures system to accept a dossier",
        lambda: any(at > moment for _, at in writer.acks),
        timeout,
    )
    return min(at for _, at in writer.acks if at > moment) - moment


def back_after_loss(writer: Writer, lost_at: float, timeout: float = 1800) -> float:
    """Seconds from the loss to the first dossier accepted after the first one refused: an
    answer to a request already past the database when it died is no recovery."""
    until("a submission refused after the loss", lambda: bool(writer.refused_after(lost_at)), 120)
    refused = writer.refused_after(lost_at)[0]
    return first_ack_after(writer, refused, timeout) + (refused - lost_at)


def rebuild_standby(lab: Lab) -> float:
    started = time.monotonic()
    lab.govops(
        "converge",
        "--env",
        lab.env,
        "-q",
        "--limit",
        f"tier_db:&province_{lab.province}",
        "--",
        "-e",
        "postgresql_standby_rebuild=true",
    )
    primary = lab.primary()
    until("the standby to stream", lambda: lab.streaming(primary), 600)
    return time.monotonic() - started


def rto_restore(lab: Lab) -> dict[str, float]:
    primary = lab.primary()
    writer = accepts_dossiers(lab)
    first_ack_after(writer, time.time() - 1, 120)
    lost_at = time.time()
    lab.podman("kill", lab.container(primary))
    say(f"{primary} killed; starting it with an empty data directory")
    lab.podman("start", lab.container(primary))
    lab.sh(primary, "systemctl", "stop", "postgresql@15-main", check=False)
    lab.sh(primary, "sh", "-c", "rm -rf /var/lib/postgresql/15/main/*")
    # The host back, its base converged first (as an operator would a replaced host): podman
    # gives a restarted container a new /etc/hosts and resolver, the role common's are gone.
    started = time.monotonic()
    lab.govops("converge", "--env", lab.env, "-q", "--limit", primary, "--", "--tags", "common")
    base_s = time.monotonic() - started
    # Only WAL archived before the loss can be replayed: `--latest`, what an operator runs.
    started = time.monotonic()
    lab.govops(
        "db",
        "restore",
        "--env",
        lab.env,
        "--province",
        lab.province,
        "--latest",
        "--into",
        "in-place",
        "--yes",
    )
    restore_s = time.monotonic() - started
    rto = back_after_loss(writer, lost_at)
    writer.stop()
    say(
        f"base converged in {base_s:.0f} s, restored in place in {restore_s:.0f} s; "
        f"dossiers accepted again {rto:.0f} s after the loss"
    )
    rebuilt = rebuild_standby(lab)
    return {
        "base_converge_s": base_s,
        "restore_s": restore_s,
        "rto_s": rto,
        "standby_rebuild_s": rebuilt,
    }


def failover(lab: Lab) -> dict[str, float]:
    primary = lab.primary()
    until("the standby to stream", lambda: lab.streaming(primary), 600)
    writer = accepts_dossiers(lab)
    time.sleep(15)
    lost_at = time.time()
    lab.podman("kill", lab.container(primary))
    say(f"{primary} killed under {len(writer.acks)} acknowledged dossiers; failing over")
    started = time.monotonic()
    lab.govops(
        "converge",
        "--env",
        lab.env,
        "-q",
        "--playbook",
        "failover.yml",
        "--",
        "-e",
        f"province={lab.province}",
    )
    play_s = time.monotonic() - started
    rto = back_after_loss(writer, lost_at)
    time.sleep(5)
    writer.stop()
    new = lab.other(primary)
    acked = [i for i, at in writer.acks if at <= lost_at]
    ids = ",".join(f"'{i}'" for i in acked)
    found = int(
        lab.psql(new, f"SELECT count(*) FROM dossiers WHERE id IN ({ids})", db="procedures")
    )
    return {"play_s": play_s, "rto_s": rto, "acked_before": len(acked), "lost": len(acked) - found}


def rpo_archive_only(lab: Lab, seconds: int) -> dict[str, float]:
    primary = lab.primary()
    writer = Writer(lab, primary, SQL_WRITER).start()
    time.sleep(seconds)
    lost_at = time.time()
    lab.podman("kill", lab.container(primary))
    writer.reader.join(timeout=10)
    acked = len(writer.acks)
    last_ack = max(at for _, at in writer.acks)
    backup = f"backup-{province_vars(lab)['zone']}"
    say(f"{primary} killed after {acked} commits; restoring the archive's end into scratch")
    out = lab.govops(
        "db",
        "restore",
        "--env",
        lab.env,
        "--province",
        lab.province,
        "--latest",
        "--into",
        "scratch",
        "--replace",
        "--json",
    )
    done = " ".join(json.loads(out)["done"])
    port = re.search(r"TCP 127\.0\.0\.1:(\d+)", done)
    if port is None:
        raise BenchError(f"no port in the scratch restore's answer: {done}")
    path = f"/var/lib/govops-scratch/{lab.province}"
    sql = "SELECT count(*), extract(epoch FROM max(at)) FROM bench_rpo"
    try:
        count, newest = (
            lab.sh(
                backup,
                "runuser",
                "-u",
                "pgbackrest",
                "--",
                "psql",
                "-XAtq",
                "-h",
                f"{path}.run",
                "-p",
                port.group(1),
                "-U",
                "postgres",
                "-d",
                "documents",
                "-c",
                sql,
            )
            .strip()
            .split("|")
        )
    finally:
        lab.sh(
            backup,
            "sh",
            "-c",
            f"runuser -u pgbackrest -- /usr/lib/postgresql/15/bin/pg_ctl "
            f"-D {path} -m immediate stop; rm -rf {path} {path}.run {path}.hba {path}.log",
            check=False,
        )
    writer.stop()
    return {
        "committed": acked,
        "restored": int(count),
        "lost": acked - int(count),
        "lost_s": last_ack - float(newest or 0),
        "killed_after_s": seconds,
        "kill_to_last_commit_s": lost_at - last_ack,
    }


def repair(lab: Lab) -> None:
    for h in (f"{lab.label}-db", f"{lab.label}-db-standby"):
        if not lab.running(h):
            lab.podman("start", lab.container(h))
    lab.govops("converge", "--env", lab.env, "-q", "--limit", f"province_{lab.province}")
    primary = lab.primary()
    until("the standby to stream", lambda: lab.streaming(primary), 600)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--env", default="lab", help="a running, converged lab (default: lab)")
    ap.add_argument("--province", default="hue")
    ap.add_argument("--size-gib", type=float, default=5.0, help="database size for the RTO")
    ap.add_argument("--latency-seconds", type=int, default=20)
    ap.add_argument(
        "--rpo-seconds",
        type=int,
        default=150,
        help="writes before the loss in the archive-only RPO (> archive_timeout)",
    )
    ap.add_argument(
        "--only",
        default="latency,load,restore,failover,rpo",
        help="comma-separated subset of: latency,load,restore,failover,rpo",
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    lab, only = Lab(args.env, args.province), set(args.only.split(","))
    figures: dict[str, object] = {"env": args.env, "province": args.province}
    try:
        primary = lab.primary()
        say(f"primary {primary}; standby streaming: {lab.streaming(primary)}")
        if "latency" in only:
            figures["commit_latency_ms"] = latency(lab, primary, args.latency_seconds)
            say(f"commit latency: {figures['commit_latency_ms']}")
        if "load" in only:
            took, size = load(lab, primary, args.size_gib)
            figures["database"] = {"load_s": took, "bytes": size}
            say(f"procedures database {size / 2**30:.2f} GiB (loaded in {took:.0f} s)")
            b_took, b_size = full_backup(lab)
            figures["full_backup"] = {"seconds": b_took, "size": b_size}
            say(f"full backup in {b_took:.0f} s, {b_size}")
        if "restore" in only:
            figures["rto_restore"] = rto_restore(lab)
        if "failover" in only:
            figures["failover"] = failover(lab)
            say(f"failover: {figures['failover']}")
        if "rpo" in only:
            figures["rpo_archive_only"] = rpo_archive_only(lab, args.rpo_seconds)
            say(f"archive-only RPO: {figures['rpo_archive_only']}")
    except BenchError as exc:
        console.print(f"[red]bench/backup failed[/]: {exc}")
        figures["error"] = str(exc)
    finally:
        say("repairing the province (both db hosts up, standby streaming)")
        try:
            repair(lab)
        except BenchError as exc:
            console.print(f"[red]repair failed[/]: {exc}")
    table = Table(title=f"bench/backup — {args.province} on lab {args.env}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, json.dumps(value))
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if "error" in figures else 0


if __name__ == "__main__":
    sys.exit(main())
