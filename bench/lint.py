"""Benchmark: `govops cutover lint` on a generated 10,000-step runbook (issue 12: goal < 2 s).
Prints the figures.

Linting used to grow with the square of the runbook's size (each action's arguments looked
their line numbers up in a copy of every line of the file; PyYAML parsed the file twice in
pure Python, and the cyclic GC rescanned the growing heap): 2,000 steps took over a minute.
The runbook made here is shaped like the national one, step for step: the six clears with
templates, an http action with a templated URL and JSON assertions, preconditions on earlier
steps and a PromQL gate every tenth step, a shared rollback (a YAML alias), deadlines going
forward within each phase of 100 steps.

Figures: lint() in-process (wall and CPU, best of --runs), the whole command in a fresh
process as an operator runs it, and lint() at 1,000 / 2,000 / 5,000 steps to show it linear;
then the same for lean steps (no JSON body nor assertions, a noop verification: ~0.5 kB a
step instead of ~1.1 kB), since most of the time is reading the YAML (libyaml composes,
one pass builds and checks the data: ~0.1 µs a byte).

    .venv/bin/python bench/lint.py [--steps 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 2.0


def runbook_text(steps: int, lean: bool = False) -> str:
    """A runbook of `steps` steps in phases of 100, as YAML text (written by hand, not dumped:
    the shared rollback is an alias, as an author would write it)."""
    out = [
        "name: bench-lint",
        "title: Generated runbook for the lint benchmark",
        't0: "2025-06-25T08:00:00+07:00"',
        "waves: {pilot: [hue], batch_size: 11, max_concurrency: 6, max_errors: 2}",
        'settings: {prometheus_url: "http://127.0.0.1:9090"}',
        "vars:",
        '  procedures: "https://{{ label }}-procedures{{ dot_domain }}"',
        "phases:",
    ]
    for p in range(0, steps, 100):
        out += [f"  - id: phase_{p // 100}", f"    title: Phase {p // 100}", "    steps:"]
        for i in range(p, min(p + 100, steps)):
            pres = [f"          - step: s{i - 1}"] if i % 100 else []
            if i % 10 == 5:
                pres.append(
                    '          - promql: \'up{job="procedures", province="{{ province }}"}\''
                )
            preconditions = "\n".join(["preconditions:", *pres]) if pres else "preconditions: []"
            rollback = "&nothing {executor: noop, note: nothing to undo}" if i == 0 else "*nothing"
            if lean:
                out.append(f"""\
      - id: s{i}
        title: Step {i}
        clears:
          people: Team {i % 7} of {{{{ name }}}}
          work: Part {i}
          time: {{deadline: "T0+{i}m"}}
          responsibility: Chief of Office
          product: Part {i} recorded
          authority: Government Office
        action: {{executor: http, with: {{url: "{{{{ procedures }}}}/api/parts/{i}"}}}}
        {preconditions}
        verify: {{executor: noop}}
        rollback: {rollback}
        timeout: 5m
        retries: 2""")
                continue
            out.append(f"""\
      - id: s{i}
        title: Step {i} of the generated runbook for {{{{ name }}}}
        clears:
          people: Office of the People's Committee of {{{{ name }}}} — team {i % 7}
          work: Do part {i} for the {{{{ commune_count }}}} communes of {{{{ province }}}}
          time: {{deadline: "T0+{i}m", expected: 30s}}
          responsibility: Chief of Office of {{{{ name }}}}
          product: The record of part {i} in {{{{ procedures }}}}/api/parts/{i}
          authority: Government Office
        action:
          executor: http
          with:
            method: PUT
            url: "{{{{ procedures }}}}/api/parts/{i}?province={{{{ province }}}}"
            json: {{part: {i}, province: "{{{{ province }}}}", key: "{{{{ idempotency_key }}}}"}}
            expect_status: [200, 201]
            assert:
              - {{path: part, equals: {i}}}
        {preconditions}
        verify:
          executor: http
          with: {{url: "{{{{ procedures }}}}/api/parts/{i}", assert: [{{path: part, equals: {i}}}]}}
        rollback: {rollback}
        timeout: 5m
        retries: 2
        retry_delay: 10s""")
    return "\n".join(out) + "\n"


def lint_in_process(path: Path, runs: int) -> tuple[float, float, int]:
    from govops.runbook.loader import lint

    best_wall = best_cpu = float("inf")
    steps = 0
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = lint(path, ROOT)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if result.errors:
            sys.exit(
                "the generated runbook does not lint:\n" + "\n".join(map(str, result.errors[:5]))
            )
        assert result.runbook is not None
        steps = len(result.runbook.step_ids)
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return best_wall, best_cpu, steps


def bench(tmp: Path, steps: int, runs: int, lean: bool) -> float:
    kind = "lean steps" if lean else "steps as dense as the national runbook's"
    path = tmp / f"bench-lint{'-lean' if lean else ''}.yml"
    path.write_text(runbook_text(steps, lean), encoding="utf-8")
    size = path.stat().st_size
    lines = path.read_text(encoding="utf-8").count("\n")
    wall, cpu, counted = lint_in_process(path, runs)
    began = time.perf_counter()
    command = subprocess.run(
        [str(Path(sys.executable).parent / "govops"), "cutover", "lint", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    whole = time.perf_counter() - began
    if command.returncode != 0:
        sys.exit(f"govops cutover lint failed:\n{command.stdout}{command.stderr}")
    print(
        f"{counted:,} {kind} ({lines:,} lines, {size / 1e6:.1f} MB, {size / counted / 1e3:.1f} kB "
        f"a step): lint {wall:.2f} s in-process (CPU {cpu:.2f} s, best of {runs}); "
        f"`govops cutover lint` in a fresh process {whole:.2f} s — goal < {GOAL:g} s"
    )
    scaling = []
    for n in (1000, 2000, 5000):
        if n >= steps:
            break
        small = tmp / f"bench-lint-{n}.yml"
        small.write_text(runbook_text(n, lean), encoding="utf-8")
        n_wall, _, _ = lint_in_process(small, 1)
        scaling.append(f"{n:,}: {n_wall:.2f} s ({n_wall / n * 1e6:.0f} µs/step)")
    scaling.append(f"{counted:,}: {wall:.2f} s ({wall / counted * 1e6:.0f} µs/step)")
    print("  linear in size — " + "; ".join(scaling))
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        dense = bench(Path(tmp), args.steps, args.runs, lean=False)
        lean = bench(Path(tmp), args.steps, args.runs, lean=True)
    for label, wall in (("dense", dense), ("lean", lean)):
        if wall > GOAL:
            print(f"{label}: over the goal ({wall:.2f} s > {GOAL:g} s)")


if __name__ == "__main__":
    main()
