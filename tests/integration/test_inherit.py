"""Legacy data inheritance on real PostgreSQL: two vendors' sources into a province's target.

The move is killed (SIGKILL, as an OOM killer or a lost host would) at random moments and
resumed: the target must equal the source exactly, without a duplicate or a gap. A source row
changed after its batch was copied must be caught by verify and named; quarantined records are
counted and none is lost.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from govops.inherit import job
from govops.inherit.communes import commune_map
from govops.inherit.config import Source, absorbed, old_codename
from govops.inherit.generate import BAD_WARD, generate, volumes
from govops.inherit.schema import VENDORS
from tests.fixtures.postgres import PostgresServer

PROVINCE = "ho_chi_minh"  # two old provinces merged in: one per vendor
VOLUME = 12_000
KINDS = ["dossier", "document", "report"]


@dataclass
class Sources:
    server: PostgresServer
    sources: list[Source]

    def target(self, name: str) -> str:
        return self.server.create_database(name)

    def env(self, target: str) -> dict[str, str]:
        env = {**os.environ, f"GOVOPS_INHERIT_TARGET_{PROVINCE.upper()}": target}
        for s in self.sources:
            env[f"GOVOPS_INHERIT_SOURCE_{s.codename.upper()}"] = s.dsn
        return env


@pytest.fixture(scope="module")
def sources(postgres: PostgresServer) -> Iterator[Sources]:
    result = []
    cmap = commune_map()
    for lp, vendor in zip(absorbed(PROVINCE), ("b", "a"), strict=True):
        dsn = postgres.create_database(f"inherit_src_{old_codename(lp)}")
        generate(
            dsn, VENDORS[vendor], lp.old_code, cmap.wards_of(lp.old_code), seed=7, volume=VOLUME
        )
        result.append(Source(PROVINCE, lp, old_codename(lp), dsn))
    yield Sources(postgres, result)


def govops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "govops.cli",
            "inherit",
            *args,
            "--env",
            "lab",
            "--province",
            PROVINCE,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def source_counts(sources: Sources) -> dict[tuple[str, str], int]:
    counts = {}
    for s in sources.sources:
        with psycopg.connect(s.dsn) as conn:
            vendor = (
                VENDORS["a"]
                if conn.execute("SELECT to_regclass('hoso')").fetchone()[0]
                else VENDORS["b"]
            )  # type: ignore[index]
            for kind in KINDS:
                counts[(s.codename, kind)] = conn.execute(
                    f"SELECT count(*) FROM {vendor.tables[kind]}"
                ).fetchone()[0]  # type: ignore[index]
    return counts


def assert_target_equals_source(sources: Sources, target: str) -> None:
    expected = source_counts(sources)
    with psycopg.connect(target) as conn:
        for (source, kind), n in expected.items():
            moved, distinct = conn.execute(
                f"SELECT count(*), count(DISTINCT source_id) FROM inherit_{kind} WHERE source = %s",
                (source,),
            ).fetchone()  # type: ignore[misc]
            held = conn.execute(
                "SELECT count(*) FROM inherit_quarantine WHERE kind = %s AND source = %s",
                (kind, source),
            ).fetchone()[0]  # type: ignore[index]
            both = conn.execute(
                f"SELECT count(*) FROM inherit_{kind} t JOIN inherit_quarantine q ON q.kind = %s "
                "AND q.source = t.source AND q.source_id = t.source_id WHERE t.source = %s",
                (kind, source),
            ).fetchone()[0]  # type: ignore[index]
            assert moved == distinct, f"{source} {kind}: duplicates in the target"
            assert both == 0, f"{source} {kind}: a record both moved and quarantined"
            assert moved + held == n, f"{source} {kind}: {moved}+{held} in target, {n} in source"
            gaps = conn.execute(
                f"SELECT count(*) FROM generate_series(1, %s) i WHERE NOT EXISTS (SELECT 1 FROM "
                f"inherit_{kind} t WHERE t.source = %s AND t.source_id = i) AND NOT EXISTS "
                "(SELECT 1 FROM inherit_quarantine q WHERE q.kind = %s AND q.source = %s "
                "AND q.source_id = i)",
                (n, source, kind, source),
            ).fetchone()[0]  # type: ignore[index]
            assert gaps == 0, f"{source} {kind}: {gaps} source ids missing"
    verdicts = job.verify(target, sources.sources, KINDS)
    assert all(v.ok for v in verdicts), [p for v in verdicts for p in v.problems]


def test_move_verify_and_quarantine_counted(sources: Sources) -> None:
    target = sources.target("inherit_roundtrip")
    env = sources.env(target)
    plan = govops("plan", "--json", env=env)
    assert plan.returncode == 0, plan.stderr
    result = govops("run", "--batch", "1000", env=env)
    assert result.returncode == 0, result.stderr
    assert_target_equals_source(sources, target)
    again = govops("run", env=env)  # a second run moves nothing
    assert again.returncode == 0 and "done: 0 moved, 0 quarantined" in again.stdout
    cmap = commune_map()
    with psycopg.connect(target) as conn:
        # every quarantined record holds the reason the map gives its ward; typos among them
        for ward, reason, _n in conn.execute(
            "SELECT old_ward, reason, count(*) FROM inherit_quarantine GROUP BY 1, 2"
        ):
            assert cmap.resolve(ward) == (None, reason), ward
        bad = conn.execute(
            "SELECT count(*) FROM inherit_quarantine WHERE old_ward = %s", (BAD_WARD,)
        ).fetchone()[0]  # type: ignore[index]
        assert bad > 0
        # and every moved record's commune is the one the map gives
        for ward, code in conn.execute(
            "SELECT DISTINCT old_ward, commune_code FROM inherit_dossier"
        ):
            assert cmap.resolve(ward) == (code, None)
    status = govops("status", "--json", "--limit", "5", env=env)
    assert status.returncode == 0, status.stderr
    assert (
        '"reason"' in status.stdout
        and BAD_WARD in govops("status", "--limit", "100000", env=env).stdout
    )
    verify = govops("verify", env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_sigkill_at_random_points_then_resume_twenty_times(sources: Sources) -> None:
    """Each kill waits for a random share of the records to be committed, then a random few
    milliseconds more, so it lands anywhere: between batches, inside a COPY, at the commit.
    Every fourth kill is at a random moment from the start instead (during start-up too)."""
    rng = random.Random(15)
    passed = mid_move = 0
    total = sum(source_counts(sources).values())
    for trial in range(20):
        target = sources.target(f"inherit_kill_{trial}")
        env = sources.env(target)
        for kill in range(1 + trial % 2):  # odd trials are killed twice before they finish
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "govops.cli",
                    "inherit",
                    "run",
                    "--env",
                    "lab",
                    "--province",
                    PROVINCE,
                    "--batch",
                    "300",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if (trial + kill) % 4 == 3:
                time.sleep(rng.uniform(0.0, 3.0))
            else:
                share = rng.uniform(0.0, 0.95) * total
                deadline = time.monotonic() + 120
                while proc.poll() is None and progress(target) < share:
                    assert time.monotonic() < deadline, f"trial {trial}: no progress"
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.05))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if 0 < progress(target) < total:
            mid_move += 1
        resumed = govops("run", "--batch", "300", env=env)
        assert resumed.returncode == 0, f"trial {trial}: {resumed.stderr}"
        assert_target_equals_source(sources, target)
        passed += 1
    assert passed == 20
    # the kills must land while records move, not only before the first batch or after the last
    assert mid_move >= 10, f"only {mid_move} of 20 kills interrupted a move"


def test_two_runs_started_together_move_each_record_once(sources: Sources) -> None:
    """A second operator starting the same move: both finish, each batch lands once."""
    target = sources.target("inherit_concurrent")
    env = sources.env(target)
    argv = [sys.executable, "-m", "govops.cli", "inherit", "run", "--env", "lab"]
    argv += ["--province", PROVINCE, "--batch", "500"]
    procs = [
        subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    assert_target_equals_source(sources, target)


def progress(target: str) -> int:
    """Records the target's checkpoints say are committed (0 before the tables exist)."""
    try:
        with psycopg.connect(target) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(moved + quarantined), 0) FROM inherit_checkpoint"
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def test_a_source_row_changed_after_its_batch_is_caught_and_named(
    sources: Sources, postgres: PostgresServer
) -> None:
    # a copy of one source, so the shared sources stay as generated
    lp = absorbed(PROVINCE)[0]
    dsn = postgres.create_database("inherit_changed_src")
    generate(
        dsn, VENDORS["b"], lp.old_code, commune_map().wards_of(lp.old_code), seed=3, volume=3000
    )
    source = Source(PROVINCE, lp, old_codename(lp), dsn)
    target = postgres.create_database("inherit_changed_tgt")
    job.run(target, [source], KINDS, batch=500)
    assert all(v.ok for v in job.verify(target, [source], KINDS))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE dossiers SET procedure_code = '9.999999' WHERE id = 1234")
        conn.execute("DELETE FROM reports WHERE report_id = 77")
    verdicts = {v.kind: v for v in job.verify(target, [source], KINDS)}
    assert not verdicts["dossier"].ok
    assert any(
        "dossier 1234: changed since it was copied" in p for p in verdicts["dossier"].problems
    )
    assert any(
        "report 77: in the target but not in the source" in p for p in verdicts["report"].problems
    )
    assert verdicts["document"].ok
    env = {
        **os.environ,
        f"GOVOPS_INHERIT_TARGET_{PROVINCE.upper()}": target,
        f"GOVOPS_INHERIT_SOURCE_{source.codename.upper()}": dsn,
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "govops.cli",
            "inherit",
            "verify",
            "--env",
            "lab",
            "--province",
            PROVINCE,
            "--old-province",
            source.codename,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "dossier 1234" in result.stdout
    with psycopg.connect(target) as conn:
        ok = conn.execute("SELECT ok FROM inherit_verification WHERE kind = 'dossier'").fetchone()[
            0
        ]  # type: ignore[index]
    assert ok is False


def test_foreign_rows_unknown_schema_and_unreachable_source_are_clear_errors(
    sources: Sources, postgres: PostgresServer
) -> None:
    target = sources.target("inherit_foreign")
    env = sources.env(target)
    assert govops("plan", env=env).returncode == 0  # creates the target tables
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO inherit_document (id, source, source_id, agency_code, number, subject, "
            "issued_at) "
            "VALUES (740000000000005, 'someone', 5, 'x', 'y', 'z', now())"
        )
    result = govops("run", env=env)
    assert result.returncode == 2 and "not moved by govops" in result.stderr
    empty = postgres.create_database("inherit_empty_src")
    bad = {**env, f"GOVOPS_INHERIT_SOURCE_{sources.sources[0].codename.upper()}": empty}
    result = govops("plan", env=bad)
    assert result.returncode == 2 and "known legacy schema" in result.stderr
    unreachable = {
        **env,
        f"GOVOPS_INHERIT_SOURCE_{sources.sources[0].codename.upper()}": "postgresql://nobody:pw@127.0.0.1:1/x",
    }
    result = govops("plan", env=unreachable)
    assert result.returncode == 2 and "cannot reach" in result.stderr and "pw@" not in result.stderr
    assert "Traceback" not in result.stderr


def test_generation_is_deterministic(postgres: PostgresServer) -> None:
    lp = absorbed("tuyen_quang")[0]
    sums = []
    for i in range(2):
        dsn = postgres.create_database(f"inherit_det_{i}")
        generate(
            dsn,
            VENDORS["a"],
            lp.old_code,
            commune_map().wards_of(lp.old_code),
            seed=11,
            volume=2000,
        )
        with psycopg.connect(dsn) as conn:
            sums.append(
                conn.execute(
                    "SELECT md5(string_agg(h::text, ',' ORDER BY ma_ho_so)) FROM hoso h"
                ).fetchone()
            )
    assert sums[0] == sums[1]
    assert volumes(2000) == {"dossier": 2000, "document": 500, "report": 200}
