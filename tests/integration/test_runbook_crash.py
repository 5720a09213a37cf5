"""Crash test: the engine process is killed with SIGKILL at random moments, then resumed (and
sometimes killed again) until the run completes. At least 20 trials. After each:

- the run completed;
- no action ran twice: every action appends its idempotency key to a side-effect log, and no
  key appears twice (resume verifies a step left running before running it again);
- no audit entry was lost: every action start has its result (or its reconciliation) after
  the resume, by idempotency key and attempt.

The real CLI runs in a subprocess (`python -m govops.cli cutover run|resume`), on a SQLite
store, with the `local` executor doing the side effect. Seed: GOVOPS_CRASH_SEED.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from govops.runbook.state import open_store
from tests.fixtures.runbook import ROOT, runbook_doc, step, write_runbook

TRIALS = 20
PROVINCES = "hue,lai_chau"  # 40 and 38 communes
EFFECTS = 2 * 4 + 40 + 38  # side effects of a complete run: 4 steps a province + communes


def _doc(log: Path) -> dict[str, object]:
    # The side effect is one append (atomic), so a kill lands before it, or after it and
    # before its record, or after both — the three cases resume must tell apart.
    act = {
        "executor": "local",
        "with": {"command": ["sh", "-c", f'echo "$GOVOPS_IDEMPOTENCY_KEY" >> {log}']},
    }
    verify = {
        "executor": "local",
        "with": {"command": ["sh", "-c", f'grep -qxF "$GOVOPS_IDEMPOTENCY_KEY" {log}']},
    }
    steps = {"action": act, "verify": verify}
    return runbook_doc(
        [
            (
                "one",
                [
                    step("a", **steps),
                    step("b", **steps),
                    step("c", foreach="commune", concurrency=4, **steps),
                ],
            ),
            ("two", [step("d", **steps), step("e", **steps)]),
        ],
        waves={"pilot": ["hue"], "batch_size": 2, "max_concurrency": 2, "max_errors": 0},
        name="crash",
    )


@dataclass
class Trial:
    index: int
    directory: Path
    rng: random.Random
    kills: int = 0
    sessions: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return str(self.directory / "state.sqlite3")

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GOVOPS_CACHE": str(self.directory / "cache"),
            "GOVOPS_RUNBOOK_STATE": self.state,
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def effects(self) -> Path:
        return self.directory / "effects.log"

    def done_effects(self) -> int:
        return len(self.effects.read_text().splitlines()) if self.effects.exists() else 0

    def session(self, args: list[str], kill: tuple[str, float] | None) -> int | None:
        """Run one CLI session. `kill`: ("effects", n) SIGKILLs it as soon as the side-effect
        log holds n lines (mid-work, wherever the engine is), ("seconds", t) after t seconds
        (start-up, reconciliation). Returns the exit code, None if killed."""
        self.sessions += 1
        errors = self.directory / f"session{self.sessions}.err"
        with errors.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "govops.cli", "cutover", *args, "--as", "crash-test"],
                cwd=ROOT,
                env=self.env(),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            began = time.monotonic()
            while proc.poll() is None:
                due = kill is not None and (
                    self.done_effects() >= kill[1]
                    if kill[0] == "effects"
                    else time.monotonic() - began >= kill[1]
                )
                if due:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    self.kills += 1
                    return None
                if time.monotonic() - began > 120:
                    proc.kill()
                    raise AssertionError(f"trial {self.index}: a session hung")
                time.sleep(0.003)
        self.log.append(errors.read_text(errors="replace")[-2000:])
        return proc.returncode

    def next_kill(self) -> tuple[str, float] | None:
        """Where to kill the next session: mostly mid-work, sometimes at start-up, and at
        most three times a trial so that every trial ends."""
        if self.kills >= 3 or (self.kills and self.rng.random() < 0.5):
            return None
        if self.rng.random() < 0.2:
            return ("seconds", self.rng.uniform(0.2, 1.0))
        done = self.done_effects()
        if done >= EFFECTS - 1:
            return None
        return ("effects", self.rng.randint(done + 1, EFFECTS - 1))

    def run_id(self) -> str | None:
        with open_store(self.state) as store:
            found = store.runs(1)
        return found[0].id if found else None


def _trial(index: int, base: Path, seed: int) -> Trial:
    trial = Trial(index, base / f"trial{index}", random.Random(seed * 1000 + index))
    trial.directory.mkdir(parents=True)
    runbook = write_runbook(trial.directory / "crash.yml", _doc(trial.effects))
    start = ["run", str(runbook), "--env", "lab", "--provinces", PROVINCES]
    code = trial.session(start, ("effects", trial.rng.randint(1, EFFECTS - 1)))
    while code is None:
        run_id = trial.run_id()
        if run_id is None:  # killed before the run was created: start it again
            code = trial.session(start, trial.next_kill())
            continue
        with open_store(trial.state) as store:
            if store.run(run_id).status == "completed":  # killed while printing the summary
                code = 0
                break
        code = trial.session(["resume", run_id], trial.next_kill())
    assert code == 0, f"trial {index}: exit {code}\n" + "\n".join(trial.log)
    return trial


def test_sigkill_and_resume(tmp_path: Path) -> None:
    seed = int(os.environ.get("GOVOPS_CRASH_SEED") or time.time())
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        trials = list(pool.map(lambda i: _trial(i, tmp_path, seed), range(TRIALS)))
    took = time.monotonic() - began
    kills = sum(t.kills for t in trials)
    assert kills >= TRIALS, f"seed {seed}: only {kills} kills landed"
    reconciled = verified_done = 0
    for trial in trials:
        run_id = trial.run_id()
        assert run_id is not None
        with open_store(trial.state) as store:
            run = store.run(run_id)
            assert run.status == "completed", f"seed {seed} trial {trial.index}"
            audit = store.audit(run_id)
            rows = store.steps(run_id)
        effects = (trial.directory / "effects.log").read_text().splitlines()
        twice = [key for key, n in Counter(effects).items() if n > 1]
        assert not twice, f"seed {seed} trial {trial.index}: actions ran twice: {twice[:5]}"
        expected = {r.idem_key for r in rows if r.idem_key and (r.item or r.step_id != "c")}
        assert set(effects) == expected, f"seed {seed} trial {trial.index}"
        started = {(e.idem_key, e.attempt) for e in audit if e.action == "step.start"}
        closed = {
            (e.idem_key, e.attempt) for e in audit if e.action in ("step.result", "step.reconcile")
        }
        reconciled += sum(1 for e in audit if e.action == "step.reconcile")
        verified_done += sum(
            1 for e in audit if e.action == "step.reconcile" and e.result == "done"
        )
        lost = started - closed
        assert not lost, f"seed {seed} trial {trial.index}: starts without result: {lost}"
        assert all(r.status == "done" for r in rows)
    resumed = sum(t.sessions for t in trials)
    print(
        f"\ncrash test: seed {seed}, {TRIALS} trials, {kills} SIGKILLs, {resumed} sessions, "
        f"{reconciled} steps found running on resume ({verified_done} verified done, not run "
        f"again), {took:.1f} s"
    )


@pytest.mark.parametrize("unused", [None])
def test_doc_is_valid(tmp_path: Path, unused: None) -> None:
    from govops.runbook.loader import lint

    assert lint(write_runbook(tmp_path / "c.yml", _doc(tmp_path / "e.log"))).ok
