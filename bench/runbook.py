"""Benchmark of the cutover engine. Prints the figures.

Default: engine overhead per step. The national runbook (runbooks/cutover.yml) with every
action, verification and rollback replaced by `noop`, run on all 34 provinces of the
production estate (3,321 communes for the per-commune step), waves and all, on a fresh SQLite
store (WAL, synchronous=FULL: every step's start and result are durable before it goes on).
Goal: at most 5 ms a step, state writes included.

`--lab`: the engine figure above once, then a rehearsal (runbooks/rehearsal.yml) against the
running lab: its wall time against the sum of the actions on its critical path (per phase and
wave, the slowest province's steps), i.e. what the engine adds to the work itself. Needs
`govops lab up` + converge.

    .venv/bin/python bench/runbook.py [--state URL] [--runs N]
    .venv/bin/python bench/runbook.py --lab [--env lab] [--inventories DIR]
    .venv/bin/python bench/runbook.py --from-run RUN --state URL   # a recorded rehearsal
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from govops.runbook import runs  # noqa: E402
from govops.runbook.context import load_environment  # noqa: E402
from govops.runbook.loader import load_runbook, load_snapshot  # noqa: E402
from govops.runbook.state import Store, open_store  # noqa: E402

NOOP = {"executor": "noop"}


def noop_runbook(source: Path, target: Path) -> Path:
    """The same phases, steps, waves and foreach, with nothing but the engine doing work."""
    doc: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    doc = copy.deepcopy(doc)
    doc["name"] = "bench"
    doc["settings"] = {"poll_interval": "1s"}
    for phase in doc["phases"]:
        for step in phase["steps"]:
            for role in ("action", "verify", "rollback"):
                step[role] = dict(NOOP)
            step["preconditions"] = [p for p in step["preconditions"] if "promql" not in p]
    target.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), "utf-8")
    return target


def one_run(store: Store, path: Path, env: str, provinces: list[str] | None) -> dict[str, float]:
    environment = load_environment(env, ROOT)
    loaded = load_runbook(path)
    run = runs.create_run(store, loaded, environment, actor="bench", provinces=provinces)
    engine = runs.engine_for(store, run, environment, actor="bench")
    began = time.perf_counter()
    status = engine.execute()
    took = time.perf_counter() - began
    assert status == "completed", status
    rows = store.steps(run.id)
    return {
        "seconds": took,
        "steps": sum(1 for r in rows if not r.item),
        "items": sum(1 for r in rows if r.item),
        "commits": engine.recorder.commits,
        "audit": len(store.audit(run.id)),
    }


def noop_bench(state: str | None, repeat: int) -> None:
    cache = os.environ.get("GOVOPS_CACHE")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        os.environ["GOVOPS_CACHE"] = tmp  # logs and the default store under a scratch dir
        try:
            _noop_runs(state, repeat, Path(tmp))
        finally:  # a lab rehearsal after this needs the real cache (SSH key, CA)
            if cache is None:
                os.environ.pop("GOVOPS_CACHE", None)
            else:
                os.environ["GOVOPS_CACHE"] = cache


def _noop_runs(state: str | None, repeat: int, tmp: Path) -> None:
    path = noop_runbook(ROOT / "runbooks" / "cutover.yml", tmp / "bench.yml")
    for label, provinces in (("34 provinces", None), ("1 province, alone", ["hue"])):
        results = []
        for i in range(repeat):
            url = state or str(tmp / f"state-{label[:2].strip()}-{i}.sqlite3")
            with open_store(url) as store:
                results.append(one_run(store, path, "production", provinces))
        best = min(results, key=lambda r: r["seconds"])
        seconds = statistics.median(r["seconds"] for r in results)
        steps, items = best["steps"], best["items"]
        print(
            f"noop cutover.yml, {label}: {steps} province-steps + {items} commune items "
            f"in {seconds:.2f} s (median of {repeat}); "
            f"{seconds / (steps + items) * 1000:.2f} ms per step or item, "
            f"{seconds / steps * 1000:.2f} ms per province-step (items included); "
            f"{best['commits']} commits for {best['audit']} audit entries "
            f"(store: {'SQLite WAL, synchronous=FULL' if state is None else state}; "
            "goal ≤ 5 ms/step)"
        )


def lab_bench(env: str, state: str | None, inventories: Path | None) -> None:
    environment = load_environment(env, ROOT, inventories)
    loaded = load_runbook(ROOT / "runbooks" / "rehearsal.yml", ROOT)
    settings = {"inventory": str(inventories / env)} if inventories else {}
    with open_store(state) as store:
        run = runs.create_run(store, loaded, environment, actor="bench", settings=settings)
        runs.approve_all(store, run.id, "bench")  # a rehearsal's approvals, given up front
        engine = runs.engine_for(store, run, environment, actor="bench")
        began = time.perf_counter()
        engine.execute()
        wall = time.perf_counter() - began
        print(critical_path(store, run.id, wall))


def critical_path(store: Store, run_id: str, wall: float | None = None) -> str:
    """A run's wall time against the sum of the actions on its critical path: per phase and
    wave (they run one after another), the slowest province's steps and rollbacks."""
    run = store.run(run_id)
    runbook = load_snapshot(run.runbook_text, run.runbook_path)
    rows = [r for r in store.steps(run.id) if not r.item]
    if wall is None:  # a recorded run: from its creation to its end
        wall = (run.finished_at or time.time()) - run.created_at
    phase_of = {s.id: p.id for p, s in runbook.steps()}
    wave_of = {p: i for i, wave in enumerate(run.waves) for p in wave}
    spent: dict[tuple[str, int, str], float] = defaultdict(float)
    for r in rows:
        if r.started_at and r.finished_at:
            spent[(phase_of[r.step_id], wave_of[r.province], r.province)] += (
                r.finished_at - r.started_at
            )
    # A failed province's rollback is work too, and its wave waits for it: each undo, from its
    # start to its result in the audit log, in the phase where the province failed.
    failed_phase = {p.province: p.failed_phase for p in store.provinces(run.id) if p.failed_phase}
    began: dict[tuple[str, str | None], float] = {}
    for entry in store.audit(run.id):
        if entry.province not in failed_phase:
            continue
        if entry.action == "rollback.start":
            began[(entry.province, entry.step_id)] = entry.at
        elif entry.action == "rollback.result" and (entry.province, entry.step_id) in began:
            key = (failed_phase[entry.province], wave_of[entry.province], entry.province)
            spent[key] += entry.at - began.pop((entry.province, entry.step_id))
    slowest: dict[tuple[str, int], float] = defaultdict(float)
    for (phase, wave, _), seconds in spent.items():
        slowest[(phase, wave)] = max(slowest[(phase, wave)], seconds)
    critical = sum(slowest.values())
    return (
        f"rehearsal ({', '.join(run.provinces)}): {run.status} in {wall:.1f} s wall; actions on "
        f"the critical path {critical:.1f} s; engine and waiting between waves "
        f"{wall - critical:.1f} s ({(wall - critical) / wall * 100:.1f} %; goal ≤ 5 %) — "
        f"run {run.id}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", action="store_true", help="Rehearse against the running lab.")
    parser.add_argument("--env", default="lab")
    parser.add_argument("--state", default=None, help="State store URL (default: scratch SQLite).")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--inventories", type=Path, default=None, help="With --lab: a throwaway lab's folder."
    )
    parser.add_argument(
        "--from-run",
        metavar="RUN",
        default=None,
        help="The critical-path figure of a recorded rehearsal (e.g. the lab test's) in --state.",
    )
    args = parser.parse_args()
    if args.from_run:
        with open_store(args.state) as store:
            print(critical_path(store, args.from_run))
    elif args.lab:  # both figures of issue 7 in one run: the engine alone, then the lab
        noop_bench(None, 1)
        lab_bench(args.env, args.state, args.inventories)
    else:
        noop_bench(args.state, args.runs)


if __name__ == "__main__":
    main()
