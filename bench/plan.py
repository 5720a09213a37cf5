"""Benchmark: `govops plan --env production`, all 34 provinces and the platform under mocks
(issue 5: goal ≤ 3 s on the 2-core dev machine). Prints the figures.

Two figures: the whole command as an engineer runs it (a fresh process: interpreter,
imports, plan, table), and `govops.pulumi.plan.plan()` in-process (what the command spends after
its imports). `--stock` adds one in-process run without infra.runner.fast_mocks and with
one process, the SDK's mocks as shipped, for comparison.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--stock", action="store_true", help="also time the stock mocks")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from govops.pulumi.plan import plan

    govops = Path(sys.executable).with_name("govops")
    command = [str(govops), "plan", "--env", "production", "--json"]
    walls, cpus = [], []
    for _ in range(args.runs):
        before = _children_cpu()
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - before)  # the command and its worker processes
    result = plan(ROOT, "production")  # warm: imports and caches, as in the command
    inner = []
    for _ in range(args.runs):
        result = plan(ROOT, "production")
        inner.append(result.seconds)
    print(
        f"govops plan --env production: {len(result.stacks)} stacks, {result.resources} "
        f"resources, {len(result.problems)} problems, {os.cpu_count()} workers; "
        f"load average {os.getloadavg()[0]:.1f} (other work on the machine slows the wall time)"
    )
    print(
        f"  command (fresh process): median {statistics.median(walls):.2f} s, "
        f"min {min(walls):.2f} s, max {max(walls):.2f} s over {args.runs} runs (goal ≤ 3 s); "
        f"CPU {statistics.median(cpus):.2f} s"
    )
    print(
        f"  plan() in-process:       median {statistics.median(inner):.2f} s, "
        f"min {min(inner):.2f} s, max {max(inner):.2f} s; "
        f"{1000 * statistics.median(inner) / result.resources:.2f} ms per resource"
    )
    if args.stock:
        stock = plan(ROOT, "production", jobs=1, fast=False)
        print(
            f"  stock mocks, one process: {stock.seconds:.2f} s "
            f"({1000 * stock.seconds / stock.resources:.2f} ms per resource)"
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
