"""Benchmark: the domain prober's full sweep, and its CPU per probe beside blackbox_exporter's.

1. Sweep: all 34 provinces × 5 systems (the nine transactions of module `all`) plus a test
   dossier in every one of the 3,321 communes, as Prometheus would ask for it: 34 concurrent
   `/probe?target=<province>` scrapes. Goal: ≤ 2 s wall.
2. CPU per probe, side by side in one run: the same 170 HTTP fronts (`/readyz` of every
   system of every province) probed by blackbox_exporter (module http, one target a probe) and
   by the prober (module `fronts`, five probes a scrape); each exporter runs in its own
   process and its CPU (utime + stime from /proc/<pid>/stat) is read before and after. Goal:
   the prober's CPU per probe no worse than blackbox_exporter's.

Everything runs on this machine: a throw-away PostgreSQL started here (one database per
province, one for the national counterparts), the stand-ins in child processes (so that their
CPU is not counted as the prober's), the prober and blackbox_exporter as child processes. All
are stopped by PID at the end.

    .venv/bin/python bench/prober.py [--rounds 5] [--standin-procs 2] [--cpu-only]

`--cpu-only` skips the sweep (the heavy part: 3,321 dossiers a round) and runs the comparison
alone, for a shared machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.postgres import (  # noqa: E402
    PostgresServer,
    _pid_alive,
    _run_as,
    find_bindir,
    free_port,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
SYSTEMS = ("procedures", "documents", "lgsp", "reporting", "meetings")


# -- processes ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its own CPU, threads included), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def stop(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is None:
        os.kill(popen.pid, signal.SIGTERM)
        try:
            popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(popen.pid, signal.SIGKILL)
            popen.wait(timeout=15)


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status < 500:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} not answering at {url} after {timeout:.0f} s")


def start_postgres() -> PostgresServer:
    """Like the test fixture, with room for every stand-in's connection pool."""
    bindir, drop = find_bindir(), _run_as()
    base = Path(tempfile.mkdtemp(prefix="govops-bench-pg-"))
    (base / "sock").mkdir()
    if drop:
        for path in (base, base / "sock"):
            os.chown(path, drop["user"], drop["group"])

    def run(*args: str) -> None:
        subprocess.run([str(bindir / args[0]), *args[1:]], cwd=base, check=True,
                       capture_output=True, **drop)  # fmt: skip

    run("initdb", "-D", str(base / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
        "--locale=C", "--no-sync")  # fmt: skip
    port = free_port()
    options = (
        f"-p {port} -k {base / 'sock'} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=800 "
        "-c shared_buffers=256MB"
    )
    run("pg_ctl", "-D", str(base / "data"), "-l", str(base / "server.log"), "-w", "-t", "60",
        "-o", options, "start")  # fmt: skip
    pid = int((base / "data" / "postmaster.pid").read_text().splitlines()[0])
    return PostgresServer(bindir=bindir, base=base, port=port, pid=pid)


# -- stand-ins in child processes ----------------------------------------------------------------


def serve_standins(spec: str) -> None:
    """Child mode: start the stand-ins of some provinces, print their ports, serve until killed."""
    from tests.integration.standin_estate import start_estate

    args = json.loads(spec)
    dsns: dict[str, str] = args["dsns"]

    def dsn_for(name: str) -> str:
        return dsns[name.split("/")[0]]

    estate = start_estate(
        args["provinces"], Path(args["state"]), dsn_for=dsn_for, publish_agencies=False,
        ports=args["ports"], national=args["national"],
    )  # fmt: skip
    print(json.dumps(estate.ports), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    estate.close()


def start_standins(
    provinces: list[str], pg: PostgresServer, procs: int, work: Path
) -> tuple[list[subprocess.Popen[bytes]], dict[str, Any]]:
    """All 34 provinces' stand-ins split over `procs` processes (the national ones in the
    first), each province's five systems in one database."""
    from tests.integration.standin_estate import NATIONAL, free_ports

    dsns = {p: pg.create_database(f"bench_{p}") for p in provinces}
    national_dsn = pg.create_database("bench_national")
    names = [*NATIONAL, *(f"{p}/{s}" for p in provinces for s in SYSTEMS)]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    children: list[subprocess.Popen[bytes]] = []
    shares = [provinces[i::procs] for i in range(procs)]
    # Every child knows every port (the national portal calls each province's procedures,
    # the provinces call the national counterparts), but starts only its own share.
    for i, share in enumerate(shares):
        spec = {
            "provinces": share,
            "state": str(work / f"standins-{i}"),
            "dsns": {**dsns, **{n: national_dsn for n in NATIONAL}},
            "ports": ports,
            "national": i == 0,
        }
        children.append(
            subprocess.Popen(
                [sys.executable, __file__, "--serve-standins", json.dumps(spec)],
                stdout=subprocess.PIPE, cwd=ROOT,
            )
        )  # fmt: skip
    for child in children:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise SystemExit("a stand-in process failed to start")
    portal = f"http://127.0.0.1:{ports['national-portal']}"
    endpoints: dict[str, Any] = {
        "systems": {
            p: {s: f"http://127.0.0.1:{ports[f'{p}/{s}']}" for s in SYSTEMS} for p in provinces
        },
        "counterparts": {
            "portal": portal, "sso": f"{portal}/sso", "payment": portal, "napd": portal,
            "docaxis": f"http://127.0.0.1:{ports['national-docaxis']}",
            "ndxp": f"http://127.0.0.1:{ports['national-ndxp']}",
            "reporting": f"http://127.0.0.1:{ports['national-reporting']}",
        },
    }  # fmt: skip
    # The runbook's job before the sweep: agencies published on the Axis (setup, not timed).
    publish = [f"{endpoints['systems'][p]['documents']}/api/agencies/publish" for p in provinces]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(_post, publish))
    return children, endpoints


def _post(url: str) -> None:
    req = urllib.request.Request(url, data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=120) as resp:
        assert resp.status == 200, f"{url}: {resp.status}"


# -- driving the exporters -----------------------------------------------------------------------


def fetch(url: str, timeout: float = 60) -> bytes:
    req = urllib.request.Request(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "30"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return bytes(resp.read())


def concurrently(urls: list[str], workers: int) -> tuple[float, list[bytes]]:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        bodies = list(pool.map(fetch, urls))
    return time.perf_counter() - started, bodies


def samples(body: bytes, name: str) -> list[tuple[str, float]]:
    out = []
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            out.append((labels, float(value)))
    return out


def measured(pid: int, run: Callable[[], Any]) -> tuple[float, Any]:
    before = cpu_seconds(pid)
    result = run()
    return cpu_seconds(pid) - before, result


def tree_cpu(pids: list[int]) -> float:
    """CPU of some processes and of their children (PostgreSQL's backends), live ones only."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, list(pids)
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += cpu_seconds(pid)
        todo += children.get(pid, [])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="sweeps and CPU rounds")
    parser.add_argument("--standin-procs", type=int, default=2)
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="skip the sweep: only the CPU-per-probe comparison with blackbox_exporter",
    )
    parser.add_argument("--serve-standins", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_standins:
        serve_standins(args.serve_standins)
        return

    from exporters.govops_prober.from_estate import config_from_estate
    from govops.registry import load_estate
    from tests.integration import monitoring_stack as stack

    estate = load_estate(ROOT / "inventories/lab/estate.yml")
    provinces = list(estate.provinces)
    communes = sum(len(pe.province.communes) for pe in estate.provinces.values())
    work = Path(tempfile.mkdtemp(prefix="govops-bench-prober-"))
    children: list[subprocess.Popen[bytes]] = []
    pg = start_postgres()
    try:
        t = time.perf_counter()
        standins, endpoints = start_standins(provinces, pg, args.standin_procs, work)
        children += standins
        print(f"setup: PostgreSQL + {len(provinces) * 5 + 4} stand-ins in "
              f"{args.standin_procs} processes, agencies published, "
              f"{time.perf_counter() - t:.1f} s")  # fmt: skip

        # The prober, configured from the registry with loopback endpoints. A period of 1 s
        # makes every commune due at every scrape, so each sweep covers all 3,321.
        config = config_from_estate(
            estate, endpoints=endpoints, commune_period_seconds=1.0,
            scrape_interval_seconds=60.0, max_communes_per_scrape=1000,
            max_concurrency=256, max_concurrency_per_target=8, timeout_seconds=30.0,
            check_timeout_seconds=30.0, state_dir=str(work / "prober-state"),
        )  # fmt: skip
        (work / "prober.json").write_text(config.to_json())
        prober_port = free_port()
        prober = subprocess.Popen(
            [sys.executable, "-m", "exporters.govops_prober", "--config", str(work / "prober.json"),
             "--listen", f"127.0.0.1:{prober_port}", "--log-level", "ERROR"],
            cwd=ROOT,
        )  # fmt: skip
        children.append(prober)
        base = f"http://127.0.0.1:{prober_port}"
        wait_http(f"{base}/metrics", prober, "the prober")

        # -- 1. the sweep ---------------------------------------------------------------------
        if not args.cpu_only:
            sweep_urls = [f"{base}/probe?target={p}&module=all" for p in provinces]
            concurrently(sweep_urls, len(provinces))  # warm-up: pools, caches, first dossiers
            walls, cpus, others = [], [], []
            estate_pids = [c.pid for c in standins] + [pg.pid]
            for _ in range(args.rounds):
                rest = tree_cpu(estate_pids)
                cpu, (wall, bodies) = measured(prober.pid, lambda: concurrently(sweep_urls, 34))
                others.append(tree_cpu(estate_pids) - rest)
                walls.append(wall)
                cpus.append(cpu)
            checks = [s for b in bodies for s in samples(b, "govops_probe_success")]
            failed = [k for k, v in checks if v != 1]
            last = "govops_commune_last_success_timestamp_seconds"
            tested = [s for b in bodies for s in samples(b, last)]
            attempted = sum(
                v for b in bodies for _, v in samples(b, "govops_dossier_communes_attempted")
            )
            print(
                f"sweep: {len(provinces)} provinces × 9 transactions ({len(checks)} checks) + "
                f"{int(attempted)} of {communes} communes' dossiers per sweep; "
                f"wall median {statistics.median(walls):.2f} s, best {min(walls):.2f} s, "
                f"worst {max(walls):.2f} s over {args.rounds} sweeps (goal ≤ 2 s); "
                f"prober CPU {statistics.median(cpus):.2f} s per sweep; "
                f"{len(failed)} failed checks; {sum(1 for _, v in tested if v > 0)} communes "
                "with a last success"
            )  # fmt: skip
            print(
                f"  CPU per sweep: prober {statistics.median(cpus):.2f} s, stand-ins + PostgreSQL "
                f"{statistics.median(others):.2f} s (2 cores: {2 * statistics.median(walls):.2f} "
                "core-seconds of wall); load average before the run "
                f"{os.getloadavg()[0]:.1f}"
            )
            slow: dict[str, list[float]] = {}
            for b in bodies:
                for labels, value in samples(b, "govops_probe_duration_seconds"):
                    check = labels.split('check="', 1)[1].split('"', 1)[0]
                    slow.setdefault(check, []).append(value)
            print(
                "  check durations, median / max over provinces: "
                + ", ".join(
                    f"{c} {statistics.median(v):.2f}/{max(v):.2f} s"
                    for c, v in sorted(slow.items(), key=lambda kv: -max(kv[1]))
                )
            )
            if failed:
                print("  failed:", ", ".join(failed[:5]))

        # -- 2. CPU per probe, blackbox_exporter vs the prober, same 170 HTTP targets ---------
        group_vars = ROOT / "inventories/lab/group_vars/all/estate.yml"
        bb_conf = work / "blackbox.yml"
        bb_vars = {
            **stack.role_defaults("blackbox_exporter"),
            "blackbox_exporter_systems": yaml.safe_load(group_vars.read_text())["govops_systems"],
            "blackbox_exporter_ca_certificate": "",
            "blackbox_exporter_fail_if_not_ssl": False,  # the stand-ins answer plain HTTP here
            "blackbox_exporter_timeout": "5s",
        }
        bb_conf.write_text(
            stack.render_role_template("blackbox_exporter", "blackbox.yml.j2", bb_vars)
        )
        bb_port = free_port()
        blackbox = subprocess.Popen(
            [stack.binary("blackbox"), f"--config.file={bb_conf}",
             f"--web.listen-address=127.0.0.1:{bb_port}", "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        children.append(blackbox)
        wait_http(f"http://127.0.0.1:{bb_port}/-/healthy", blackbox, "blackbox_exporter")
        bb_urls = [
            f"http://127.0.0.1:{bb_port}/probe?module=govops_{s}&target="
            f"{endpoints['systems'][p][s]}/readyz"
            for p in provinces for s in SYSTEMS
        ]  # fmt: skip
        pr_urls = [f"{base}/probe?target={p}&module=fronts" for p in provinces]
        concurrently(bb_urls, 16)
        concurrently(pr_urls, 16)  # warm-up both
        bb_cpu = pr_cpu = 0.0
        bb_ok = pr_ok = 0
        for _ in range(args.rounds):
            cpu, (_, bodies) = measured(blackbox.pid, lambda: concurrently(bb_urls, 16))
            bb_cpu += cpu
            bb_ok += sum(1 for b in bodies for _, v in samples(b, "probe_success") if v == 1)
            cpu, (_, bodies) = measured(prober.pid, lambda: concurrently(pr_urls, 16))
            pr_cpu += cpu
            pr_ok += sum(1 for b in bodies for _, v in samples(b, "govops_probe_success") if v == 1)
        probes = len(bb_urls) * args.rounds
        print(
            f"CPU per probe over {probes} probes each: blackbox_exporter "
            f"{bb_cpu / probes * 1e3:.3f} ms ({bb_ok} ok), prober {pr_cpu / probes * 1e3:.3f} ms "
            f"({pr_ok} ok); prober/blackbox = {pr_cpu / bb_cpu:.2f} (goal ≤ 1)"
        )
    finally:
        for child in reversed(children):
            stop(child)
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
        assert not _pid_alive(pg.pid)


if __name__ == "__main__":
    main()
