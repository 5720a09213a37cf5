"""The state store's contract, the same tests on SQLite and on a real PostgreSQL (started by
the tests/fixtures/postgres.py fixture): round trips, the lease, and an audit log that
neither store lets anyone change or delete."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from govops.runbook import runs
from govops.runbook.executors import Approval
from govops.runbook.sqlstore import PostgresStore, SqliteStore
from govops.runbook.state import (
    AuditEntry,
    Batch,
    Decision,
    LeaseLost,
    ProvinceRow,
    RunBusy,
    RunRecord,
    StateError,
    StepRow,
    Store,
    open_store,
)
from tests.fixtures.runbook import (
    ROOT,
    isolated_cache,
    runbook_doc,
    small_environment,
    start,
    statuses,
    step,
    write_runbook,
)

__all__ = ["isolated_cache"]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = str(tmp_path / "state.sqlite3")
    else:
        url = request.getfixturevalue("postgres_dsn")
    with open_store(url) as opened:
        yield opened


def _run(run_id: str = "r1") -> RunRecord:
    return RunRecord(
        id=run_id,
        runbook="test",
        runbook_path="rb.yml",
        runbook_text="name: test\n",
        digest="0" * 64,
        env="lab",
        provinces=["hue", "ha_noi"],
        waves=[["hue"], ["ha_noi"]],
        t0=1750000000.0,
        created_at=time.time(),
        created_by="tester",
        vars={"a": "b"},
        settings={"resolve": "inventory"},
        options={"no_wait": False},
    )


def _audit(run_id: str, action: str, **kw: object) -> AuditEntry:
    return AuditEntry(run_id, time.time(), "tester", action, **kw)  # type: ignore[arg-type]


def test_round_trip(store: Store) -> None:
    run = _run()
    store.create_run(
        run,
        [ProvinceRow("r1", "hue", 0), ProvinceRow("r1", "ha_noi", 1)],
        _audit("r1", "run.create"),
    )
    loaded = store.run("r1")
    assert loaded == run
    assert [r.id for r in store.runs()] == ["r1"]
    store.commit(
        Batch(
            steps=[StepRow("r1", "hue", "a", "", "one", "running", 1, 0, "r1/hue/a", 1.5)],
            provinces=[ProvinceRow("r1", "hue", 0, "running", updated_at=2.0)],
            audit=[_audit("r1", "step.start", province="hue", step_id="a", attempt=1)],
        ),
        "r1",
    )
    store.commit(
        Batch(
            steps=[StepRow("r1", "hue", "a", "", "one", "done", 1, 0, "r1/hue/a", 1.5, 3.0, "ok")],
            run_status="completed",
            run_finished_at=4.0,
        ),
        "r1",
    )
    assert store.steps("r1") == [
        StepRow("r1", "hue", "a", "", "one", "done", 1, 0, "r1/hue/a", 1.5, 3.0, "ok")
    ]
    assert [p.status for p in store.provinces("r1")] == ["running", "pending"]
    assert store.run("r1").status == "completed" and store.run("r1").finished_at == 4.0
    assert [e.action for e in store.audit("r1")] == ["run.create", "step.start"]
    assert all(e.seq is not None for e in store.audit("r1"))


def test_lease_and_abort(store: Store) -> None:
    store.create_run(_run(), [], _audit("r1", "run.create"))
    now = time.time()
    fence_a = store.claim("r1", "a:1", now, now - 15, "Lan")
    assert fence_a == 1
    assert store.claim("r1", "b:2", now, now - 15) is None  # a is alive
    assert store.run("r1").owner_actor == "Lan"
    fence_a = store.claim("r1", "a:1", now, now - 15)  # its own again: a new fence
    assert fence_a == 2
    assert store.heartbeat("r1", "a:1", fence_a, now).owner
    assert not store.heartbeat("r1", "a:1", fence_a, now).abort_requested
    store.request_abort("r1", _audit("r1", "run.abort"))
    assert store.heartbeat("r1", "a:1", fence_a, now).abort_requested
    fence_b = store.claim("r1", "b:2", now + 100, now + 50)  # a went silent: b takes over
    assert fence_b == 3
    assert not store.heartbeat("r1", "a:1", fence_a, now).owner
    store.release("r1", "a:1", fence_a)  # a stale engine cannot release b's lease
    assert store.run("r1").owner == "b:2"
    store.release("r1", "b:2", fence_b)
    assert store.run("r1").owner is None


def test_writes_with_a_stale_fence_are_refused_whole(store: Store) -> None:
    """The fence check is in the write's own transaction: nothing of a refused batch lands,
    and a write with the current fence still does."""
    store.create_run(_run(), [ProvinceRow("r1", "hue", 0)], _audit("r1", "run.create"))
    now = time.time()
    old = store.claim("r1", "a:1", now, now - 15)
    assert old is not None
    row = StepRow("r1", "hue", "a", "", "one", "running", 1, 0, "r1/hue/a", now, pid=42)
    store.commit(Batch(steps=[row]), "r1", old)
    new = store.claim("r1", "b:2", now + 100, now + 50)
    assert new == old + 1
    with pytest.raises(LeaseLost, match="fence 1 is stale"):
        store.commit(
            Batch(
                steps=[StepRow("r1", "hue", "a", "", "one", "done", 1, 0, "r1/hue/a", now)],
                provinces=[ProvinceRow("r1", "hue", 0, "done")],
                audit=[_audit("r1", "province.done", province="hue")],
                run_status="completed",
            ),
            "r1",
            old,
        )
    assert [s.status for s in store.steps("r1")] == ["running"]
    assert store.steps("r1")[0].pid == 42
    assert [p.status for p in store.provinces("r1")] == ["pending"]
    assert [e.action for e in store.audit("r1")] == ["run.create"]
    assert store.run("r1").status == "running"
    store.commit(Batch(provinces=[ProvinceRow("r1", "hue", 0, "running")]), "r1", new)
    assert [p.status for p in store.provinces("r1")] == ["running"]


# An engine stalled in the middle of its fenced write (SIGSTOP after the fence check, its
# transaction open and the run's row locked), in its own process.
_STALLED_ENGINE = """
import os, signal, sys, time
from contextlib import contextmanager
from govops.runbook.sqlstore import PostgresStore
from govops.runbook.state import AuditEntry, Batch, LeaseLost, StateError

stalls = [True]  # once: the first write's fence check

class Cursor:
    def __init__(self, cur):
        self.cur = cur
    def execute(self, sql, params=()):
        self.cur.execute(sql, params)
        if "fence = fence" in sql and stalls and stalls.pop():
            print("stalled", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)
    def __getattr__(self, name):
        return getattr(self.cur, name)

class Stalling(PostgresStore):
    @contextmanager
    def _tx(self):
        with super()._tx() as cur:
            yield Cursor(cur)

store = Stalling(sys.argv[1])
late = AuditEntry("r1", time.time(), "a", "province.done", province="hue")
try:
    store.commit(Batch(audit=[late]), "r1", int(sys.argv[2]))
except LeaseLost as exc:
    print("LeaseLost:", exc, flush=True)
except StateError as exc:
    print("StateError:", exc, flush=True)
else:
    print("committed", flush=True)
"""


def test_an_engine_stalled_inside_its_write_cannot_keep_the_run(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL ends a session idle in a transaction past the lease: the stalled engine's
    lock on the run's row goes with it, a second engine takes the run over, and the stalled
    one, thawed, hears that its lease is lost; nothing of its write lands."""
    monkeypatch.setenv("GOVOPS_RUNBOOK_LEASE", "2")
    with open_store(postgres_dsn) as store:
        store.create_run(_run(), [ProvinceRow("r1", "hue", 0)], _audit("r1", "run.create"))
        now = time.time()
        old = store.claim("r1", "a:1", now, now - 15)
        assert old is not None
        stalled = subprocess.Popen(
            [sys.executable, "-c", _STALLED_ENGINE, postgres_dsn, str(old)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        claimed: list[int | None] = []
        taker = threading.Thread(
            target=lambda: claimed.append(store.claim("r1", "b:2", now + 100, now + 50))
        )
        try:
            assert stalled.stdout is not None
            assert stalled.stdout.readline().strip() == "stalled"
            started = time.monotonic()
            taker.start()
            taker.join(timeout=20)
            waited = time.monotonic() - started
            assert not taker.is_alive(), "the stalled engine's row lock blocked the takeover"
        finally:
            if taker.is_alive():
                stalled.kill()  # frees the lock, so the taker's thread ends
            stalled.send_signal(signal.SIGCONT)
            out, err = stalled.communicate(timeout=60)
            taker.join()
        assert claimed == [old + 1]
        assert waited < 10
        assert out.startswith("LeaseLost:"), (out, err)
        assert [e.action for e in store.audit("r1")] == ["run.create"]
        assert store.run("r1").owner == "b:2"


def test_a_second_run_on_busy_provinces_is_refused(store: Store) -> None:
    """create_run checks for live runs holding the provinces in its own transaction."""
    first = _run("r1")
    first.owner, first.heartbeat_at, first.owner_actor = "host:1", time.time(), "Lan"
    store.create_run(first, [], _audit("r1", "run.create"), live=lambda r: True)
    assert store.run("r1").fence == 1
    second = _run("r2")
    second.provinces = ["da_nang", "hue"]
    with pytest.raises(RunBusy, match=r"hue already in active run r1 .*operator Lan"):
        store.create_run(second, [], _audit("r2", "run.create"), live=lambda r: True)
    assert store.find_run("r2") is None
    store.create_run(second, [], _audit("r2", "run.create"), live=lambda r: False)  # r1 dead
    third = _run("r3")
    third.provinces = ["can_tho"]  # other provinces: allowed
    store.create_run(third, [], _audit("r3", "run.create"), live=lambda r: True)


def test_decisions_are_append_only(store: Store) -> None:
    store.create_run(_run(), [], _audit("r1", "run.create"))
    decision = Decision("r1", "hue", "a", "", 2, "retry", "Lan", 5.0, "checked by hand")
    store.add_decision(decision, _audit("r1", "step.decide", province="hue", step_id="a"))
    assert store.decisions("r1") == [decision]
    if isinstance(store, SqliteStore):
        conn = sqlite3.connect(store.path)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM runbook_decisions")
        conn.close()


def test_approvals(store: Store) -> None:
    store.create_run(_run(), [], _audit("r1", "run.create"))
    store.add_approval(
        Approval("r1", "gate", "", "chair", 5.0, "ok"), _audit("r1", "approval", step_id="gate")
    )
    store.add_approval(
        Approval("r1", "other", "hue", "chair", 6.0), _audit("r1", "approval", step_id="other")
    )
    assert store.approvals("r1", "gate") == [Approval("r1", "gate", "", "chair", 5.0, "ok")]
    assert len(store.approvals("r1")) == 2


def test_audit_and_approvals_are_append_only(store: Store) -> None:
    store.create_run(_run(), [], _audit("r1", "run.create"))
    store.add_approval(Approval("r1", "gate", "", "chair", 5.0), _audit("r1", "approval"))
    if isinstance(store, SqliteStore):
        conn = sqlite3.connect(store.path)
        for sql in (
            "UPDATE runbook_audit SET actor = 'x'",
            "DELETE FROM runbook_audit",
            "UPDATE runbook_approvals SET approver = 'x'",
            "DELETE FROM runbook_approvals",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(sql)
        conn.close()
    else:
        assert isinstance(store, PostgresStore)
        dsn = store.conn.info.dsn
        for sql in (
            "UPDATE runbook_audit SET actor = 'x'",
            "DELETE FROM runbook_audit",
            "TRUNCATE runbook_audit",
            "DELETE FROM runbook_approvals",
        ):
            # Even the superuser the test server runs as: the trigger refuses.
            with (
                psycopg.connect(dsn, autocommit=True) as conn,
                pytest.raises(psycopg.errors.RaiseException, match="append-only"),
            ):
                conn.execute(sql)
    assert [e.actor for e in store.audit("r1")] == ["tester", "tester"]
    # And the interface has no way to do it: no method updates or deletes an entry.
    assert not [name for name in dir(store) if "delete" in name or "update_audit" in name]


def test_unknown_run_and_unreachable_store(tmp_path: Path) -> None:
    with (
        open_store(str(tmp_path / "s.sqlite3")) as store,
        pytest.raises(Exception, match="RUN: expected a run id"),
    ):
        store.run("nope")
    with pytest.raises(StateError, match="state store"):
        open_store("postgresql://nobody@127.0.0.1:1/none")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StateError):
        open_store(str(tmp_path / "a-file" / "state.sqlite3"))  # its folder is a file


def test_the_same_engine_run_on_either_store(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "effects.log"
    fail_in_hue = {"executor": "noop", "with": {"fail": "{{ province == 'hue' }}"}}
    undo = {
        "executor": "local",
        "with": {"command": ["sh", "-c", f'echo "undo $GOVOPS_STEP $GOVOPS_PROVINCE" >> {log}']},
    }
    gate = {"executor": "manual", "with": {"instructions": "go?"}}
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step("a", rollback=undo),
                    step(
                        "b",
                        foreach="commune",
                        concurrency=4,
                        readiness_check="dossier_submission_tested",
                    ),
                ],
            ),
            (
                "two",
                [
                    step("gate", action=gate, verify=gate),
                    step("c", action=fail_in_hue, rollback=undo),
                ],
            ),
        ],
        waves={"pilot": ["tuyen_quang"], "batch_size": 4, "max_concurrency": 4, "max_errors": 1},
    )
    env = small_environment(("tuyen_quang", "hue", "ho_chi_minh", "ha_noi", "da_nang"), communes=12)
    run, engine = start(store, write_runbook(tmp_path / "rb.yml", doc), env)
    runs.approve(store, run.id, "gate", "chair")  # approvals may come before the gate
    assert engine.execute() == "completed_with_failures"
    assert statuses(store, run.id) == {
        "tuyen_quang": "done",
        "hue": "rolled_back",
        "ho_chi_minh": "done",
        "ha_noi": "done",
        "da_nang": "done",
    }
    assert sorted(log.read_text().splitlines()) == ["undo a hue", "undo c hue"]
    progress = store.progress(run.id)
    assert {c.tested for c in progress.communes} == {12}
    audit = store.audit(run.id)
    started = {(e.idem_key, e.attempt) for e in audit if e.action == "step.start"}
    assert started == {(e.idem_key, e.attempt) for e in audit if e.action == "step.result"}
    assert len(store.steps(run.id)) == 5 * 4 + 5 * 12
    assert engine.recorder.commits < len(audit)  # group commit shared transactions


def test_postgres_redacts_passwords() -> None:
    with pytest.raises(StateError) as caught:
        open_store("postgresql://me:secret@127.0.0.1:1/db")
    assert "secret" not in str(caught.value) and "me:***@" in str(caught.value)
