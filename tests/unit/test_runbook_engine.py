"""The engine on a SQLite store with the noop and local executors: waves, rate control,
rollback, foreach communes, retries, preconditions, approvals, abort, resume."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from govops.errors import GovopsError, InputError
from govops.runbook import runs
from govops.runbook.state import Batch, StepRow, Store, open_store
from tests.fixtures.runbook import (
    isolated_cache,
    resume,
    runbook_doc,
    small_environment,
    start,
    statuses,
    step,
    step_status,
    write_runbook,
)

__all__ = ["isolated_cache"]
PROVINCES = ("tuyen_quang", "hue", "ho_chi_minh")  # official code order: 08, 46, 79


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(str(tmp_path / "state.sqlite3"))


def _append(log: Path, text: str) -> dict[str, Any]:
    """A local action that appends a line to `log` (the side effect tests look at)."""
    return {"executor": "local", "with": {"command": ["sh", "-c", f'echo "{text}" >> {log}']}}


def _recorded(log: Path) -> dict[str, Any]:
    """A verification: the idempotency key is in `log`."""
    return {
        "executor": "local",
        "with": {"command": ["sh", "-c", f'grep -qxF "$GOVOPS_IDEMPOTENCY_KEY" {log}']},
    }


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_happy_path_phase_by_phase_with_communes(tmp_path: Path, store: Store) -> None:
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step("a", readiness_check="admin_units_declared"),
                    step(
                        "b",
                        foreach="commune",
                        readiness_check="dossier_submission_tested",
                        concurrency=2,
                    ),
                ],
            ),
            (
                "two",
                [
                    step(
                        "c",
                        pre=[{"step": "a"}, {"readiness": "admin_units_declared"}],
                        readiness_check="sso_tested",
                    )
                ],
            ),
        ],
        waves={"pilot": ["hue"], "batch_size": 2, "max_concurrency": 2, "max_errors": 0},
    )
    path = write_runbook(tmp_path / "rb.yml", doc)
    events: list[Any] = []
    run, engine = start(store, path, small_environment(PROVINCES), events=events)
    assert run.waves == [["hue"], ["tuyen_quang", "ho_chi_minh"]]
    assert engine.execute() == "completed"
    assert set(statuses(store, run.id).values()) == {"done"}
    # Phase by phase: no province starts phase two before every wave has done phase one.
    audit = store.audit(run.id)
    starts = [(e.province, e.step_id) for e in audit if e.action == "step.start" and not e.item]
    first_c = min(i for i, (_, s) in enumerate(starts) if s == "c")
    assert all(s != "c" for _, s in starts[:first_c]) and len(starts[:first_c]) == 6
    assert starts[0] == ("hue", "a")  # the pilot first
    # Every action start has its result, by idempotency key and attempt.
    started = {(e.idem_key, e.attempt) for e in audit if e.action == "step.start"}
    ended = {(e.idem_key, e.attempt) for e in audit if e.action == "step.result"}
    assert started == ended
    progress = store.progress(run.id)
    checks = {r.check_id: (r.done, r.total, r.in_runbook) for r in progress.readiness}
    assert checks["sso_tested"] == (3, 3, True)
    assert checks["payment_tested"] == (0, 3, False)
    assert {(c.province, c.tested, c.total) for c in progress.communes} == {
        ("tuyen_quang", 3, 3),
        ("hue", 3, 3),
        ("ho_chi_minh", 3, 3),
    }
    assert any(e.kind == "wave" for e in events) and events[-1].kind == "end"


def test_failed_province_rolls_back_in_reverse_others_finish(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "effects.log"
    fail_in_hue = {"executor": "noop", "with": {"fail": "{{ province == 'hue' }}"}}
    steps = [
        step(
            "a",
            action=_append(log, "do a {{ province }}"),
            rollback=_append(log, "undo a {{ province }}"),
        ),
        step(
            "b",
            action=_append(log, "do b {{ province }}"),
            rollback=_append(log, "undo b {{ province }}"),
            foreach="commune",
        ),
        step("c", action=fail_in_hue, rollback=_append(log, "undo c {{ province }}"), retries=1),
        step("d", rollback=_append(log, "undo d {{ province }}")),
    ]
    doc = runbook_doc(
        [("one", steps)], waves={"batch_size": 3, "max_concurrency": 3, "max_errors": 1}
    )
    run, engine = start(
        store, write_runbook(tmp_path / "rb.yml", doc), small_environment(PROVINCES, communes=2)
    )
    assert engine.execute() == "completed_with_failures"
    assert statuses(store, run.id) == {
        "tuyen_quang": "done",
        "hue": "rolled_back",
        "ho_chi_minh": "done",
    }
    undo = [line for line in _lines(log) if line.startswith("undo") and "hue" in line]
    # c (failed, may have half-applied), then b per commune (last commune first), then a; d
    # never started.
    assert undo == ["undo c hue", "undo b hue", "undo b hue", "undo a hue"]
    rows = step_status(store, run.id)
    assert rows.get(("hue", "d", ""), "pending") == "pending"
    assert rows[("hue", "c", "")] == "rolled_back"
    failed = [
        e
        for e in store.audit(run.id)
        if e.action == "step.result" and e.step_id == "c" and e.province == "hue"
    ]
    assert [e.result for e in failed] == ["failed; will retry", "failed"]
    assert not any("undo" in line and "hue" not in line for line in _lines(log))


def test_error_threshold_stops_new_provinces(tmp_path: Path, store: Store) -> None:
    fail = {"executor": "noop", "with": {"fail": "{{ province != 'tuyen_quang' }}"}}
    doc = runbook_doc(
        [("one", [step("a", action=fail)]), ("two", [step("b")])],
        waves={"batch_size": 2, "max_concurrency": 1, "max_errors": 0},
    )
    env = small_environment((*PROVINCES, "ha_noi"))
    run, engine = start(store, write_runbook(tmp_path / "rb.yml", doc), env)
    assert run.waves == [["ha_noi", "tuyen_quang"], ["hue", "ho_chi_minh"]]
    assert engine.execute() == "halted"
    # ha_noi failed first; with max_errors 0 nothing new starts: tuyen_quang, hue, HCMC wait.
    assert statuses(store, run.id) == {
        "ha_noi": "rolled_back",
        "tuyen_quang": "pending",
        "hue": "pending",
        "ho_chi_minh": "pending",
    }
    assert any(e.action == "run.halted" for e in store.audit(run.id))
    assert runs.EXIT["halted"] == 1


def test_pilot_failure_halts_the_run(tmp_path: Path, store: Store) -> None:
    fail = {"executor": "noop", "with": {"fail": "{{ province == 'hue' }}"}}
    doc = runbook_doc(
        [("one", [step("a", action=fail)])],
        waves={"pilot": ["hue"], "batch_size": 5, "max_concurrency": 5, "max_errors": 5},
    )
    run, engine = start(
        store, write_runbook(tmp_path / "rb.yml", doc), small_environment(PROVINCES)
    )
    assert engine.execute() == "halted"
    assert statuses(store, run.id)["tuyen_quang"] == "pending"


def test_precondition_not_met_fails_without_running(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "effects.log"
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step("a", action={"executor": "noop", "with": {"fail": True}}),
                ],
            ),
            ("two", [step("b", action=_append(log, "b ran"), pre=[{"step": "a"}])]),
        ],
        waves={"batch_size": 3, "max_concurrency": 3, "max_errors": 3},
    )
    _, engine = start(store, write_runbook(tmp_path / "rb.yml", doc), small_environment(PROVINCES))
    assert engine.execute() == "completed_with_failures"
    assert not log.exists()


def test_retry_verifies_first_and_never_repeats_a_done_action(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "effects.log"
    # The action does its work, then reports failure (a timeout after the fact, say).
    flaky = {
        "executor": "local",
        "with": {"command": ["sh", "-c", f'echo "$GOVOPS_IDEMPOTENCY_KEY" >> {log}; exit 1']},
    }
    doc = runbook_doc([("one", [step("a", action=flaky, verify=_recorded(log), retries=3)])])
    run, engine = start(store, write_runbook(tmp_path / "rb.yml", doc), small_environment(("hue",)))
    assert engine.execute() == "completed"
    assert _lines(log) == [f"{run.id}/hue/a"]  # ran once; the retry found it done
    actions = [(e.action, e.result) for e in store.audit(run.id) if e.step_id == "a"]
    assert ("step.verify", "done") in actions


def test_timeout_fails_the_step(tmp_path: Path, store: Store) -> None:
    slow = {"executor": "noop", "with": {"sleep": 5}}
    doc = runbook_doc([("one", [step("a", action=slow, timeout="0.3s")])])
    run, engine = start(store, write_runbook(tmp_path / "rb.yml", doc), small_environment(("hue",)))
    began = time.monotonic()
    assert engine.execute() == "completed_with_failures"
    assert time.monotonic() - began < 3
    assert "timed out" in {s.step_id: s for s in store.steps(run.id)}["a"].message


def _manual_doc(**manual: Any) -> dict[str, Any]:
    gate = {"executor": "manual", "with": {"instructions": "go?", **manual}}
    return runbook_doc(
        [("one", [step("a"), step("gate", action=gate, verify=gate)]), ("two", [step("b")])],
        waves={"batch_size": 3, "max_concurrency": 3, "max_errors": 0},
    )


def test_no_wait_approval_then_resume(tmp_path: Path, store: Store) -> None:
    env = small_environment(PROVINCES)
    run, engine = start(store, write_runbook(tmp_path / "rb.yml", _manual_doc()), env, no_wait=True)
    assert engine.execute() == "waiting"
    assert runs.EXIT["waiting"] == 3
    assert set(statuses(store, run.id).values()) == {"waiting"}
    runs.approve(store, run.id, "gate", "chair", province="hue", note="hue is ready")
    assert resume(store, run.id, env, no_wait=True).execute(resumed=True) == "waiting"
    assert statuses(store, run.id)["hue"] == "done"
    runs.approve(store, run.id, "gate", "chair")  # the others, all at once
    assert resume(store, run.id, env, no_wait=True).execute(resumed=True) == "completed"
    approvals = [e for e in store.audit(run.id) if e.action == "approval"]
    assert [(e.actor, e.province) for e in approvals] == [("chair", "hue"), ("chair", "")]
    # A waiting step is verified first on resume: the gate's approval is its proof.
    assert any(e.action == "step.reconcile" and e.result == "done" for e in store.audit(run.id))


def test_blocking_wait_sees_an_approval_from_elsewhere(tmp_path: Path, store: Store) -> None:
    run, engine = start(
        store, write_runbook(tmp_path / "rb.yml", _manual_doc()), small_environment(("hue",))
    )
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(engine.execute()))
    worker.start()
    time.sleep(0.5)
    assert statuses(store, run.id)["hue"] == "running"
    with open_store(store.url) as other:  # another operator's process
        runs.approve(other, run.id, "gate", "chair")
    worker.join(10)
    assert result == ["completed"]


def test_approval_checks(tmp_path: Path, store: Store) -> None:
    run, _ = start(
        store,
        write_runbook(tmp_path / "rb.yml", _manual_doc(approvers=["chair"])),
        small_environment(("hue",)),
    )
    with pytest.raises(InputError, match="--as: expected one of the step's approvers"):
        runs.approve(store, run.id, "gate", "intern")
    with pytest.raises(InputError, match="STEP: expected a manual step"):
        runs.approve(store, run.id, "nope", "chair")
    with pytest.raises(InputError, match="a step with a manual action"):
        runs.approve(store, run.id, "a", "chair")
    with pytest.raises(InputError, match="--province"):
        runs.approve(store, run.id, "gate", "chair", province="ha_noi")
    with pytest.raises(InputError, match="RUN: expected a run id"):
        runs.approve(store, "no-such-run", "gate", "chair")


def test_abort_from_another_process_stops_new_steps(tmp_path: Path, store: Store) -> None:
    slow = {"executor": "noop", "with": {"sleep": 0.3}}
    doc = runbook_doc(
        [("one", [step(x, action=slow) for x in "abcdef"])],
        waves={"batch_size": 1, "max_concurrency": 1, "max_errors": 0},
    )
    run, engine = start(
        store, write_runbook(tmp_path / "rb.yml", doc), small_environment(PROVINCES)
    )
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(engine.execute()))
    worker.start()
    time.sleep(0.5)
    with open_store(store.url) as other:
        assert "abort requested" in runs.abort(other, run.id, "chair")
    worker.join(10)
    assert result == ["aborted"]
    assert store.run(run.id).status == "aborted"
    assert statuses(store, run.id)["ho_chi_minh"] == "pending"
    with pytest.raises(GovopsError, match="aborted: nothing to resume"):
        runs.resumable(store.run(run.id))
    with pytest.raises(GovopsError, match="already aborted"):
        runs.abort(store, run.id, "chair")


def test_abort_without_an_engine_marks_the_run(tmp_path: Path, store: Store) -> None:
    doc = runbook_doc([("one", [step("a")])])
    run, _ = start(store, write_runbook(tmp_path / "rb.yml", doc), small_environment(("hue",)))
    assert run.owner is not None
    store.release(run.id, run.owner, run.fence)  # as if the process that created it had died
    assert "marked aborted" in runs.abort(store, run.id, "chair")
    assert store.run(run.id).status == "aborted"


def test_resume_reconciles_a_step_left_running(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "effects.log"
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step(
                        "a", action=_append(log, "$GOVOPS_IDEMPOTENCY_KEY"), verify=_recorded(log)
                    ),
                    step(
                        "b", action=_append(log, "$GOVOPS_IDEMPOTENCY_KEY"), verify=_recorded(log)
                    ),
                ],
            )
        ]
    )
    env = small_environment(("hue",))
    run, _ = start(store, write_runbook(tmp_path / "rb.yml", doc), env)
    # As a crash would leave it: both steps started (key recorded); a's action ran (its
    # process recorded, since ended), b's never started (no process recorded).
    key_a, key_b = f"{run.id}/hue/a", f"{run.id}/hue/b"
    log.write_text(key_a + "\n")
    ended = subprocess.Popen(["true"])
    ended.wait()
    store.commit(
        Batch(
            steps=[
                StepRow(
                    run.id,
                    "hue",
                    "a",
                    "",
                    "one",
                    "running",
                    1,
                    0,
                    key_a,
                    time.time(),
                    pid=ended.pid,
                    pstart="boot:1",
                    host=socket.gethostname(),
                ),
                StepRow(run.id, "hue", "b", "", "one", "running", 1, 0, key_b, time.time()),
            ]
        ),
        run.id,
    )
    assert resume(store, run.id, env).execute(resumed=True) == "completed"
    assert _lines(log) == [key_a, key_b]  # a not run again; b run once
    reconciled = {e.step_id: e.result for e in store.audit(run.id) if e.action == "step.reconcile"}
    assert reconciled == {"a": "done", "b": "not started"}


def test_interrupt_leaves_the_run_resumable(tmp_path: Path, store: Store) -> None:
    slow = {"executor": "noop", "with": {"sleep": 0.2}}
    doc = runbook_doc(
        [("one", [step(x, action=slow) for x in "abcd"])],
        waves={"batch_size": 1, "max_concurrency": 1, "max_errors": 0},
    )
    env = small_environment(PROVINCES)
    run, engine = start(store, write_runbook(tmp_path / "rb.yml", doc), env)
    threading.Timer(0.3, engine.interrupt).start()
    assert engine.execute() == "running"
    assert store.run(run.id).status == "running"
    assert resume(store, run.id, env).execute(resumed=True) == "completed"


def test_a_live_engine_keeps_its_lease(tmp_path: Path, store: Store) -> None:
    doc = runbook_doc([("one", [step("a")])])
    env = small_environment(("hue",))
    run, engine = start(store, write_runbook(tmp_path / "rb.yml", doc), env)
    assert store.claim(run.id, "elsewhere:1", time.time(), time.time() + 1, "Thu")
    with pytest.raises(GovopsError, match=r"being run by Thu \(engine elsewhere:1"):
        engine.execute()


def _left_running(store: Store, run_id: str, step_id: str, pid: int | None) -> None:
    """A step as a killed engine leaves it: started, its process (if any) recorded."""
    key = f"{run_id}/hue/{step_id}"
    host = socket.gethostname() if pid else ""
    row = StepRow(
        run_id, "hue", step_id, "", "one", "running", 1, 0, key, time.time(),
        pid=pid, pstart="boot:1" if pid else "", host=host,
    )  # fmt: skip
    store.commit(Batch(steps=[row]), run_id)


def _ended_pid() -> int:
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


def test_an_unverifiable_step_is_uncertain_until_an_operator_decides(
    tmp_path: Path, store: Store
) -> None:
    log = tmp_path / "effects.log"
    call = {"executor": "http", "with": {"url": "http://127.0.0.1:9/never"}}
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step("a", action=_append(log, "a")),  # verify: noop
                    step("b", action=_append(log, "b"), idempotent=True),
                    step("c", action=call),  # an http call: no process to look at
                    step("d", action=_append(log, "d")),
                ],
            )
        ]
    )
    env = small_environment(("hue",))
    run, _ = start(store, write_runbook(tmp_path / "rb.yml", doc), env)
    assert run.owner is not None
    store.release(run.id, run.owner, run.fence)
    _left_running(store, run.id, "a", _ended_pid())
    _left_running(store, run.id, "b", _ended_pid())
    _left_running(store, run.id, "c", None)
    assert resume(store, run.id, env).execute(resumed=True) == "waiting"
    rows = step_status(store, run.id)
    assert rows[("hue", "a", "")] == "uncertain"
    assert rows[("hue", "b", "")] == "pending"  # idempotent: to run again (after a)
    assert rows[("hue", "c", "")] == "uncertain"
    audit = store.audit(run.id)
    uncertain = {e.step_id: e.result for e in audit if e.action == "step.uncertain"}
    assert uncertain == {
        "a": "waiting for a decision",
        "b": "retry (idempotent)",
        "c": "waiting for a decision",
    }
    assert _lines(log) == []  # the province waits at a
    with pytest.raises(InputError, match="STEP: expected a step uncertain in hue \\(a, c\\)"):
        runs.decide(store, run.id, "d", "hue", "done", "chair")
    with pytest.raises(InputError, match="DECISION: expected done or retry or skip"):
        runs.decide(store, run.id, "a", "hue", "maybe", "chair")
    runs.decide(store, run.id, "a", "hue", "retry", "chair", note="nothing in the log")
    runs.decide(store, run.id, "c", "hue", "skip", "chair")
    assert resume(store, run.id, env).execute(resumed=True) == "completed"
    assert _lines(log) == ["a", "b", "d"]  # a retried, b run again, c skipped, d ran
    rows = step_status(store, run.id)
    assert rows[("hue", "c", "")] == "skipped"
    decided = [(e.action, e.step_id, e.result, e.actor) for e in store.audit(run.id)]
    assert ("step.decide", "a", "retry", "chair") in decided
    assert ("step.decided", "a", "retry", "tester") in decided


def test_a_decision_applies_to_its_attempt_only(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "effects.log"
    doc = runbook_doc([("one", [step("a", action=_append(log, "a"))])])
    env = small_environment(("hue",))
    run, _ = start(store, write_runbook(tmp_path / "rb.yml", doc), env)
    assert run.owner is not None
    store.release(run.id, run.owner, run.fence)
    _left_running(store, run.id, "a", _ended_pid())
    assert resume(store, run.id, env).execute(resumed=True) == "waiting"
    runs.decide(store, run.id, "a", "hue", "done", "chair")
    # The operator saw it done; yet a later crash of attempt 2 would need a new decision.
    row = next(r for r in store.steps(run.id) if r.step_id == "a")
    assert [d.attempt for d in store.decisions(run.id)] == [row.attempt]
    assert resume(store, run.id, env).execute(resumed=True) == "completed"
    assert _lines(log) == []  # decided done: never run again


def test_a_process_still_running_is_waited_for_before_verifying(
    tmp_path: Path, store: Store
) -> None:
    """An orphan of a killed engine: resume waits for it, then verifies (done: not rerun)."""
    log = tmp_path / "effects.log"
    doc = runbook_doc(
        [
            (
                "one",
                [step("a", action=_append(log, "$GOVOPS_IDEMPOTENCY_KEY"), verify=_recorded(log))],
            )
        ]
    )
    env = small_environment(("hue",))
    run, _ = start(store, write_runbook(tmp_path / "rb.yml", doc), env)
    assert run.owner is not None
    store.release(run.id, run.owner, run.fence)
    key = f"{run.id}/hue/a"
    orphan = subprocess.Popen(["sh", "-c", f"sleep 1; echo {key} >> {log}"], start_new_session=True)
    from govops.runbook.executors.process import spawned

    info = spawned(orphan.pid)
    row = StepRow(
        run.id, "hue", "a", "", "one", "running", 1, 0, key, time.time(),
        pid=info.pid, pstart=info.pstart, host=info.host,
    )  # fmt: skip
    store.commit(Batch(steps=[row]), run.id)
    began = time.monotonic()
    assert resume(store, run.id, env).execute(resumed=True) == "completed"
    orphan.wait()
    assert time.monotonic() - began >= 0.8  # it waited for the orphan
    assert _lines(log) == [key]
    reconcile = [e for e in store.audit(run.id) if e.action == "step.reconcile"]
    assert [e.result for e in reconcile] == ["done"]
    assert "finished after the previous engine" in reconcile[0].detail


def test_interrupt_in_the_last_phase_does_not_record_the_province_done(
    tmp_path: Path, store: Store
) -> None:
    slow = {"executor": "noop", "with": {"sleep": 0.3}}
    doc = runbook_doc([("one", [step("a")]), ("two", [step("b", action=slow), step("c")])])
    env = small_environment(("hue",))
    run, engine = start(store, write_runbook(tmp_path / "rb.yml", doc), env)
    threading.Timer(0.15, engine.interrupt).start()
    assert engine.execute() == "running"
    assert statuses(store, run.id)["hue"] == "running"
    assert step_status(store, run.id).get(("hue", "c", ""), "pending") == "pending"
    assert resume(store, run.id, env).execute(resumed=True) == "completed"
    assert statuses(store, run.id)["hue"] == "done"
