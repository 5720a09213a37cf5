"""Benchmark: render all 34 provinces (issue: under 2 s). Prints the figures.

Runs in a scratch copy of the inventories so the committed tree is never touched.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from govops.registry import load_estate
from govops.registry.catalog import catalog
from govops.registry.geography import provinces
from govops.render import render, write

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5


def main() -> None:
    # Warm the registry caches once: every CLI run pays this, so it is reported apart.
    t0 = time.perf_counter()
    provinces()
    catalog()
    cold = time.perf_counter() - t0
    print(f"registry load (34 provinces, 3,321 communes, catalog): {cold * 1000:.0f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        for env in ("production", "lab"):
            shutil.copytree(ROOT / "inventories" / env, Path(tmp) / "inventories" / env)
            times = []
            for _ in range(RUNS):
                start = time.perf_counter()
                estate = load_estate(Path(tmp) / "inventories" / env / "estate.yml")
                files = render(estate)
                write(Path(tmp), env, files)
                times.append(time.perf_counter() - start)
            size = sum(len(c) for c in files.values())
            print(
                f"render --env {env}: {len(estate.provinces)} provinces, {len(files)} files, "
                f"{size / 1e6:.1f} MB; median {statistics.median(times):.3f} s, "
                f"max {max(times):.3f} s over {RUNS} runs (goal < 2 s)"
            )


if __name__ == "__main__":
    main()
