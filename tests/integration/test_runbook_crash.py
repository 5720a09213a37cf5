"""Crash test: the engine process is killed with SIGKILL at random moments, then resumed (and
sometimes killed again) until the run completes. At least 20 trials per mode and store:

- `instant`: one append per action (a kill lands before it, or after it and before its record,
  or after both), a `foreach: commune` step with 4 communes at once;
- `slow`: each action sleeps 1–3 s then appends: kills land while actions work, and their
  orphans go on working while the next engine starts;
- `noop`: `verify: noop` (nothing can tell whether an action took effect), actions sleeping up
  to a second; some steps `idempotent: true` (their action checks before it appends), the
  others wait for `govops cutover decide`, which the test gives the way an operator would:
  `done` if the side effect is there, `retry` if not.

On SQLite and on a real PostgreSQL. After each trial:

- the run completed;
- no action's effect happened twice: every action appends its idempotency key to a side-effect
  log; no key appears twice, and every step's key is there;
- the audit log is whole and in order: per idempotency key, every `step.start` is closed by a
  result, a reconcile or an `uncertain` of that attempt before the next start, and at the end.

The real CLI runs in subprocesses (`python -m govops.cli cutover run|resume|decide`). Seed:
GOVOPS_CRASH_SEED. Each test prints its counts (trials, kills, duplicates) for the report.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from govops.runbook.state import AuditEntry, open_store
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.runbook import ROOT, runbook_doc, step, write_runbook

TRIALS = 20
PROVINCES = "hue,lai_chau"  # 40 and 38 communes
CLOSING = ("step.result", "step.reconcile", "step.uncertain")


@dataclass(frozen=True)
class Mode:
    name: str
    workers: int  # trials at once (sleeping trials cost no CPU)
    effects: int  # side effects of a complete run
    build: Callable[[Path, random.Random], dict[str, Any]]


def _append(log: Path, sleep: float = 0.0, once: bool = False) -> dict[str, Any]:
    key = '"$GOVOPS_IDEMPOTENCY_KEY"'
    effect = f"echo {key} >> {log}"
    if once:  # an idempotent action: it looks before it appends
        effect = f"grep -qxF {key} {log} 2>/dev/null || {effect}"
    script = (f"sleep {sleep:.2f}; " if sleep else "") + effect
    return {"executor": "local", "with": {"command": ["sh", "-c", script]}}


def _recorded(log: Path) -> dict[str, Any]:
    return {
        "executor": "local",
        "with": {"command": ["sh", "-c", f'grep -qxF "$GOVOPS_IDEMPOTENCY_KEY" {log}']},
    }


def _instant(log: Path, rng: random.Random) -> dict[str, Any]:
    steps = {"action": _append(log), "verify": _recorded(log)}
    return runbook_doc(
        [
            ("one", [step("a", **steps), step("c", foreach="commune", concurrency=4, **steps)]),
            ("two", [step("d", **steps)]),
        ],
        waves={"pilot": ["hue"], "batch_size": 2, "max_concurrency": 2, "max_errors": 0},
        name="crash",
    )


def _slow(log: Path, rng: random.Random) -> dict[str, Any]:
    def slow(step_id: str) -> dict[str, Any]:
        action = _append(log, sleep=rng.uniform(1, 3))
        return step(step_id, action=action, verify=_recorded(log), timeout="20s")

    return runbook_doc(
        [("one", [slow("a"), slow("b")]), ("two", [slow("c")])],
        waves={"batch_size": 2, "max_concurrency": 2, "max_errors": 0},
        name="crash",
    )


def _noop(log: Path, rng: random.Random) -> dict[str, Any]:
    def unverified(step_id: str, idempotent: bool) -> dict[str, Any]:
        action = _append(log, sleep=rng.uniform(0, 0.6), once=idempotent)
        return step(step_id, action=action, idempotent=idempotent, timeout="20s")

    return runbook_doc(
        [
            ("one", [unverified("a", False), unverified("b", True)]),
            ("two", [unverified("c", False), unverified("d", True)]),
        ],
        waves={"batch_size": 2, "max_concurrency": 2, "max_errors": 0},
        name="crash",
    )


MODES = {
    "instant": Mode("instant", 3, 2 * 2 + 40 + 38, _instant),
    "slow": Mode("slow", 8, 2 * 3, _slow),
    "noop": Mode("noop", 8, 2 * 4, _noop),
}


@dataclass
class Trial:
    index: int
    mode: Mode
    directory: Path
    state: str
    rng: random.Random
    kills: int = 0
    sessions: int = 0
    decisions: int = 0
    log: list[str] = field(default_factory=list)

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

    def effect_lines(self) -> list[str]:
        return self.effects.read_text().splitlines() if self.effects.exists() else []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "govops.cli", "cutover", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def session(self, args: list[str], kill: tuple[str, float] | None) -> int | None:
        """Run one CLI session. `kill`: ("effects", n) SIGKILLs it as soon as the side-effect
        log holds n lines (mid-work, wherever the engine is), ("seconds", t) after t seconds
        (start-up, settling, actions at work). Returns the exit code, None if killed."""
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
                    len(self.effect_lines()) >= kill[1]
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
                time.sleep(0.01)
        self.log.append(errors.read_text(errors="replace")[-2000:])
        return proc.returncode

    def next_kill(self) -> tuple[str, float] | None:
        """Where to kill the next session: mostly mid-work, sometimes by time, and at most
        twice a trial so that every trial ends."""
        if self.kills >= 2 or (self.kills and self.rng.random() < 0.6):
            return None
        done = len(self.effect_lines())
        if self.rng.random() < 0.3 or done >= self.mode.effects - 1:
            return ("seconds", self.rng.uniform(0.5, 3.0))
        return ("effects", self.rng.randint(done + 1, self.mode.effects - 1))

    def run_id(self) -> str | None:
        with open_store(self.state) as store:
            found = store.runs(1)
        return found[0].id if found else None

    def decide(self, run_id: str) -> None:
        """What an operator does for each uncertain step: look at the world, then decide."""
        with open_store(self.state) as store:
            uncertain = [r for r in store.steps(run_id) if r.status == "uncertain"]
        assert uncertain, f"trial {self.index}: waiting, but nothing is uncertain"
        effects = set(self.effect_lines())
        for row in uncertain:
            decision = "done" if row.idem_key in effects else "retry"
            where = ["--commune", row.item] if row.item else []
            done = self.cli(
                "decide", run_id, row.step_id, decision, "--province", row.province, *where,
                "--as", "operator", "--note", "checked the side-effect log",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            self.decisions += 1


def _trial(index: int, base: Path, seed: int, mode: Mode, state: Callable[[int], str]) -> Trial:
    directory = base / f"trial{index}"
    directory.mkdir(parents=True)
    rng = random.Random(seed * 1000 + index)
    trial = Trial(index, mode, directory, state(index), rng)
    runbook = write_runbook(directory / "crash.yml", mode.build(trial.effects, rng))
    start = ["run", str(runbook), "--env", "lab", "--provinces", PROVINCES]
    code = trial.session(start, ("effects", rng.randint(1, mode.effects - 1)))
    while code != 0:
        run_id = trial.run_id()
        if code is None and run_id is None:  # killed before the run was created
            code = trial.session(start, trial.next_kill())
            continue
        assert run_id is not None
        with open_store(trial.state) as store:
            if store.run(run_id).status == "completed":  # killed while printing the summary
                break
        if code == 3:
            trial.decide(run_id)
        elif code is not None:
            raise AssertionError(f"trial {index}: exit {code}\n" + "\n".join(trial.log))
        code = trial.session(["resume", run_id], trial.next_kill())
    return trial


def audit_in_order(audit: list[AuditEntry]) -> list[str]:
    """Problems: a step.start not closed (result, reconcile, uncertain of its attempt) before
    the next start of the same key, or at the end."""
    problems: list[str] = []
    open_attempt: dict[str, int] = {}
    for entry in audit:
        if entry.action == "step.start":
            if entry.idem_key in open_attempt:
                problems.append(
                    f"{entry.idem_key}: start {entry.attempt} while "
                    f"{open_attempt[entry.idem_key]} is open"
                )
            open_attempt[entry.idem_key] = entry.attempt
        elif entry.action in CLOSING and open_attempt.get(entry.idem_key) == entry.attempt:
            del open_attempt[entry.idem_key]
    problems += [f"{key}: start {attempt} never closed" for key, attempt in open_attempt.items()]
    return problems


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("mode_name", list(MODES))
def test_sigkill_and_resume(
    tmp_path: Path, mode_name: str, kind: str, request: pytest.FixtureRequest
) -> None:
    mode = MODES[mode_name]
    seed = int(os.environ.get("GOVOPS_CRASH_SEED") or time.time())
    if kind == "sqlite":

        def state(i: int) -> str:
            return str(tmp_path / f"trial{i}" / "state.sqlite3")
    else:
        server: PostgresServer = request.getfixturevalue("postgres")

        def state(i: int) -> str:
            return server.create_database(f"crash_{mode_name}_{i}_{seed}")

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=mode.workers) as pool:
        trials = list(pool.map(lambda i: _trial(i, tmp_path, seed, mode, state), range(TRIALS)))
    took = time.monotonic() - began
    kills = sum(t.kills for t in trials)
    duplicates = reconciled = uncertain = 0
    failures: list[str] = []
    for trial in trials:
        run_id = trial.run_id()
        assert run_id is not None
        with open_store(trial.state) as store:
            run = store.run(run_id)
            audit = store.audit(run_id)
            rows = store.steps(run_id)
        where = f"seed {seed} {mode_name}/{kind} trial {trial.index}"
        effects = trial.effect_lines()
        twice = [key for key, n in Counter(effects).items() if n > 1]
        duplicates += len(twice)
        expected = {r.idem_key for r in rows if r.idem_key and (r.item or r.step_id != "c")}
        if mode_name != "instant":
            expected = {r.idem_key for r in rows if r.idem_key}
        if run.status != "completed":
            failures.append(f"{where}: run {run.status}")
        if twice:
            failures.append(f"{where}: actions ran twice: {twice[:5]}")
        if set(effects) != expected:
            failures.append(f"{where}: effects {sorted(set(effects) ^ expected)[:5]} differ")
        failures += [f"{where}: {p}" for p in audit_in_order(audit)[:3]]
        if not all(r.status == "done" for r in rows):
            failures.append(f"{where}: rows not done: {[r.status for r in rows]}")
        reconciled += sum(1 for e in audit if e.action == "step.reconcile")
        uncertain += sum(1 for e in audit if e.action == "step.uncertain")
    print(
        f"\ncrash test {mode_name}/{kind}: seed {seed}, {TRIALS} trials, {kills} SIGKILLs, "
        f"{sum(t.sessions for t in trials)} sessions, {reconciled} steps settled by "
        f"verification or as never started, {uncertain} uncertain "
        f"({sum(t.decisions for t in trials)} decided with `cutover decide`), "
        f"{duplicates} duplicates, {took:.1f} s"
    )
    assert not failures, "\n".join(failures[:20])
    assert kills >= TRIALS, f"seed {seed}: only {kills} kills landed"


@pytest.mark.parametrize("mode_name", list(MODES))
def test_docs_are_valid(tmp_path: Path, mode_name: str) -> None:
    from govops.runbook.loader import lint

    doc = MODES[mode_name].build(tmp_path / "e.log", random.Random(0))
    assert lint(write_runbook(tmp_path / "c.yml", doc)).ok
