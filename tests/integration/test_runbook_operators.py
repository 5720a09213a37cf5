"""Interrupts and operators, with the real CLI in subprocesses, on SQLite and PostgreSQL.

- Ctrl-C (SIGINT) or SIGTERM in each phase, then `resume`: the interrupted session exits 130,
  its province is not recorded done, and after the resume every step has run exactly once —
  whether the running action finished within the grace period or was ended at its end.
- Two operators: two `run` of one runbook at once (one is refused, exit 4, naming the run and
  its operator; a run scoped to other provinces is not); `resume` while the engine lives
  (refused); an engine frozen (SIGSTOP) past its lease while a second operator resumes, then
  thawed (SIGCONT): only one engine's writes land, the thawed one stops (exit 4).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from govops.runbook.state import open_store
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.runbook import ROOT, runbook_doc, step, write_runbook


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "state.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"ops_{request.node.name}")


@dataclass
class Lab:
    directory: Path
    state: str
    runbook: Path

    @property
    def effects(self) -> Path:
        return self.directory / "effects.log"

    @property
    def starts(self) -> Path:
        return self.directory / "starts.log"

    def lines(self, path: Path) -> list[str]:
        return path.read_text().splitlines() if path.exists() else []

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "GOVOPS_CACHE": str(self.directory / "cache"),
            "GOVOPS_RUNBOOK_STATE": self.state,
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "govops.cli", "cutover", *args],
            cwd=ROOT,
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, provinces: str = "hue,lai_chau", **env: str) -> subprocess.Popen[str]:
        return self.start(
            "run", str(self.runbook), "--env", "lab", "--provinces", provinces, *args, **env
        )

    def run_id(self) -> str:
        with open_store(self.state) as store:
            return store.runs(1)[0].id

    def wait_for(self, what: Callable[[], bool], timeout: float = 60) -> None:
        until = time.monotonic() + timeout
        while not what():
            assert time.monotonic() < until, "timed out waiting"
            time.sleep(0.02)

    def once_each(self) -> None:
        """Every step's action took effect exactly once."""
        with open_store(self.state) as store:
            run = store.runs(1)[0]
            keys = {r.idem_key for r in store.steps(run.id) if r.idem_key}
            assert run.status == "completed"
        counts = Counter(self.lines(self.effects))
        assert {k for k, n in counts.items() if n > 1} == set()
        assert set(counts) == keys


def _lab(tmp_path: Path, state: str, sleep: float) -> Lab:
    log, starts = tmp_path / "effects.log", tmp_path / "starts.log"
    key = '"$GOVOPS_IDEMPOTENCY_KEY"'
    action = {
        "executor": "local",
        "with": {
            "command": ["sh", "-c", f"echo {key} >> {starts}; sleep {sleep}; echo {key} >> {log}"]
        },
    }
    verify = {"executor": "local", "with": {"command": ["sh", "-c", f"grep -qxF {key} {log}"]}}
    steps = {"action": action, "verify": verify, "timeout": "30s"}
    doc = runbook_doc(
        [
            ("one", [step("a", **steps), step("b", **steps)]),
            ("two", [step("c", **steps), step("d", **steps)]),
        ],
        waves={"batch_size": 2, "max_concurrency": 2, "max_errors": 0},
        name="ops",
    )  # fmt: skip
    return Lab(tmp_path, state, write_runbook(tmp_path / "ops.yml", doc))


@pytest.mark.parametrize(
    ("phase_step", "sig", "grace"),
    [
        ("a", signal.SIGINT, "30"),  # the running action finishes within the grace period
        ("c", signal.SIGINT, "30"),  # the last phase: the province must not be recorded done
        ("c", signal.SIGTERM, "0.3"),  # the running action is ended at the grace's end
        ("b", signal.SIGINT, "0.3"),
    ],
)
def test_interrupt_in_each_phase_then_resume(
    tmp_path: Path, state: str, phase_step: str, sig: signal.Signals, grace: str
) -> None:
    lab = _lab(tmp_path, state, sleep=1.5)
    engine = lab.run("--as", "lan", GOVOPS_INTERRUPT_GRACE=grace)
    lab.wait_for(lambda: any(s.endswith(f"/hue/{phase_step}") for s in lab.lines(lab.starts)))
    engine.send_signal(sig)
    _, err = engine.communicate(timeout=60)
    assert engine.returncode == 130, err
    run_id = lab.run_id()
    with open_store(state) as store:
        provinces = {p.province: p.status for p in store.provinces(run_id)}
        assert store.run(run_id).status == "running"
        rows = {(r.province, r.step_id): r.status for r in store.steps(run_id)}
    assert "done" not in provinces.values(), provinces  # later steps never ran
    if grace == "30":  # the action in flight finished and was recorded
        assert rows[("hue", phase_step)] == "done", rows
    else:  # ended at the grace's end: left running, settled on resume
        assert rows[("hue", phase_step)] == "running", rows
    resumed = lab.start("resume", run_id, "--as", "lan")
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    lab.once_each()


def test_two_runs_at_once_one_is_refused(tmp_path: Path, state: str) -> None:
    lab = _lab(tmp_path, state, sleep=1.0)
    first, second = lab.run("--as", "lan"), lab.run("--as", "minh")
    (_, err1), (_, err2) = first.communicate(timeout=120), second.communicate(timeout=120)
    codes = sorted([first.returncode, second.returncode])
    assert codes == [0, 4], (err1, err2)
    refused = err1 if first.returncode == 4 else err2
    winner = "lan" if first.returncode == 0 else "minh"
    run_id = lab.run_id()
    assert f"already in active run {run_id}" in " ".join(refused.split())
    assert f"operator {winner}" in " ".join(refused.split())
    lab.once_each()
    with open_store(state) as store:
        assert len(store.runs()) == 1  # the refused one created nothing


def test_a_run_scoped_to_other_provinces_goes_ahead(tmp_path: Path, state: str) -> None:
    lab = _lab(tmp_path, state, sleep=1.0)
    first = lab.run("--as", "lan")
    lab.wait_for(lambda: bool(lab.lines(lab.starts)))
    overlapping = lab.run("--as", "minh", provinces="hue")
    _, err = overlapping.communicate(timeout=60)
    assert overlapping.returncode == 4 and "hue already in active run" in err
    other = lab.run("--as", "minh", provinces="dien_bien")
    _, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    first.communicate(timeout=120)
    assert first.returncode == 0


def test_resume_while_the_engine_lives_is_refused(tmp_path: Path, state: str) -> None:
    lab = _lab(tmp_path, state, sleep=1.0)
    engine = lab.run("--as", "lan")
    lab.wait_for(lambda: bool(lab.lines(lab.starts)))
    second = lab.start("resume", lab.run_id(), "--as", "minh")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 4
    assert "is being run by lan" in " ".join(err.split())
    _, err = engine.communicate(timeout=120)
    assert engine.returncode == 0, err
    lab.once_each()


def test_a_frozen_engine_thawed_after_a_takeover_writes_nothing(tmp_path: Path, state: str) -> None:
    lab = _lab(tmp_path, state, sleep=1.5)
    lease = {"GOVOPS_RUNBOOK_LEASE": "2"}
    frozen = lab.run("--as", "lan", **lease)
    # Both provinces' first steps started (recorded): the freeze lands in an action, not in
    # a write (that one: test_runbook_state.py's stalled engine).
    lab.wait_for(lambda: len(lab.lines(lab.starts)) >= 2)
    frozen.send_signal(signal.SIGSTOP)
    try:
        time.sleep(2.5)  # past its lease: its heartbeat stopped with it
        run_id = lab.run_id()
        taker = lab.start("resume", run_id, "--as", "minh", **lease)

        def taken() -> bool:
            with open_store(state) as store:
                return any(e.action == "run.resume" for e in store.audit(run_id))

        lab.wait_for(taken)
    finally:
        frozen.send_signal(signal.SIGCONT)
    _, err = frozen.communicate(timeout=120)
    assert frozen.returncode == 4, err
    assert "lease lost" in err
    _, err = taker.communicate(timeout=120)
    assert taker.returncode == 0, err
    lab.once_each()
    with open_store(state) as store:
        audit = store.audit(run_id)
    takeover = next(e.seq for e in audit if e.action == "run.resume")
    late = [
        (e.action, e.province, e.step_id)
        for e in audit
        if e.actor == "lan" and (e.seq or 0) > takeover
    ]
    assert late == []  # nothing of the thawed engine landed after the takeover
    done_by = {e.actor for e in audit if e.action == "province.done"}
    assert done_by == {"minh"}
