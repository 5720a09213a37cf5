"""Benchmark `govops inherit`: throughput against a raw COPY pipe, verify time, peak memory.

    .venv/bin/python bench/inherit.py                       # 1,000,000 dossiers, documents, reports
    .venv/bin/python bench/inherit.py --volume 10000000     # the issue's scale
    .venv/bin/python bench/inherit.py --volume 200000,1000000  # several volumes: how memory scales

On a throwaway PostgreSQL (tests/fixtures/postgres.py), Hồ Chí Minh City's two absorbed old
provinces are generated (one per vendor schema, the volume split between them), then, between
the same databases:
  1. raw: `psql -c "COPY (SELECT * FROM t) TO STDOUT" | psql -c "COPY t FROM STDIN"` per table,
     into tables of the source's own shape and keys: the physical limit, nothing transformed;
  2. `govops inherit run` (re-keyed, normalized, remapped, quarantined, checkpointed);
  3. `govops inherit verify` of what it moved.
Goals (issue 15): govops ≥ 0.5× the raw rate; verify ≤ 0.25× the move's time; govops' peak RSS
under 300 MiB whatever the volume.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(
    0, str(REPO)
)  # the throwaway PostgreSQL is a test fixture (tests/ is not installed)

from govops.inherit.communes import commune_map  # noqa: E402
from govops.inherit.config import absorbed, old_codename  # noqa: E402
from govops.inherit.generate import generate  # noqa: E402
from govops.inherit.schema import VENDORS  # noqa: E402
from tests.fixtures.postgres import PostgresServer, start_postgres  # noqa: E402

PROVINCE = "ho_chi_minh"
console = Console(width=150)


def timed_child(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit code) of one child process, its own rusage."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(
            f"{argv[3:5]} failed: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}"
        )
    return took, usage.ru_maxrss / 1024, proc.returncode


def raw_copy(server: PostgresServer, sources: list[tuple[str, str]], target: str) -> float:
    """The raw pipe per table, source's shape and keys recreated in schema raw of the target."""
    psql = str(server.bindir / "psql")
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS raw CASCADE; CREATE SCHEMA raw")
        for _, vendor in sources:
            conn.execute(f"SET search_path = raw; {VENDORS[vendor].ddl}; SET search_path = public")
    started = time.perf_counter()
    for dsn, vendor in sources:
        for table in VENDORS[vendor].tables.values():
            out = subprocess.Popen(
                [psql, "-q", "-d", dsn, "-c", f"COPY (SELECT * FROM {table}) TO STDOUT"],
                stdout=subprocess.PIPE,
            )
            subprocess.run(
                [psql, "-q", "-d", target, "-c", f"COPY raw.{table} FROM STDIN"],
                stdin=out.stdout,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            assert out.stdout is not None
            out.stdout.close()
            if out.wait() != 0:
                raise SystemExit(f"raw COPY of {table} failed")
    return time.perf_counter() - started


def one_volume(server: PostgresServer, volume: int, seed: int) -> dict[str, float]:
    cmap = commune_map()
    olds = absorbed(PROVINCE)
    sources: list[tuple[str, str]] = []
    env = dict(os.environ)
    records = 0
    started = time.perf_counter()
    for lp, vendor in zip(olds, ("b", "a"), strict=True):
        dsn = server.create_database(f"bench_{volume}_{old_codename(lp)}")
        counts = generate(
            dsn,
            VENDORS[vendor],
            lp.old_code,
            cmap.wards_of(lp.old_code),
            seed=seed,
            volume=volume // len(olds),
        )
        records += sum(counts.values())
        sources.append((dsn, vendor))
        env[f"GOVOPS_INHERIT_SOURCE_{old_codename(lp).upper()}"] = dsn
    generated = time.perf_counter() - started
    target = server.create_database(f"bench_{volume}_target")
    env[f"GOVOPS_INHERIT_TARGET_{PROVINCE.upper()}"] = target
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    raw = raw_copy(server, sources, target)
    govops = [sys.executable, "-m", "govops.cli", "inherit"]
    where = ["--env", "lab", "--province", PROVINCE]
    move, move_rss, _ = timed_child([*govops, "run", *where], env)
    verify, verify_rss, code = timed_child([*govops, "verify", *where], env)
    if code != 0:
        raise SystemExit("verify found a mismatch after a clean run")
    return {
        "volume": volume,
        "records": records,
        "generate_s": generated,
        "raw_s": raw,
        "move_s": move,
        "verify_s": verify,
        "move_rss": move_rss,
        "verify_rss": verify_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--volume",
        default="1000000",
        help="Dossiers in all, split between the old provinces (comma list for several runs).",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    volumes = [int(v) for v in args.volume.split(",")]
    server = start_postgres()
    try:
        rows = []
        for volume in volumes:
            console.print(
                f"[bold]volume {volume:,}[/]: generating, raw COPY, govops run, govops verify …"
            )
            rows.append(one_volume(server, volume, args.seed))
    finally:
        server.stop()
    table = Table(title="govops inherit (goals: ratio ≥ 0.5, verify/move ≤ 0.25, RSS < 300 MiB)")
    for col in (
        "dossiers",
        "records",
        "generate s",
        "raw s",
        "govops s",
        "ratio",
        "verify s",
        "verify/move",
        "RSS run MiB",
        "RSS verify MiB",
    ):
        table.add_column(col, justify="right")
    ok = True
    for r in rows:
        ratio, vratio = r["raw_s"] / r["move_s"], r["verify_s"] / r["move_s"]
        ok &= ratio >= 0.5 and vratio <= 0.25 and max(r["move_rss"], r["verify_rss"]) < 300
        table.add_row(
            f"{r['volume']:,}",
            f"{r['records']:,}",
            f"{r['generate_s']:.1f}",
            f"{r['raw_s']:.1f}",
            f"{r['move_s']:.1f}",
            f"{ratio:.2f}",
            f"{r['verify_s']:.1f}",
            f"{vratio:.2f}",
            f"{r['move_rss']:.0f}",
            f"{r['verify_rss']:.0f}",
        )
    console.print(table)
    rate = rows[-1]["records"] / rows[-1]["move_s"]
    console.print(f"govops moved {rate:,.0f} records/s; goals {'met' if ok else '[red]NOT met[/]'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
