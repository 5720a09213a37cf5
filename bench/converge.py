"""Benchmark `govops converge` (playbooks/site.yml) on a throwaway lab.

    .venv/bin/python bench/converge.py                    # the default lab (3 provinces)
    .venv/bin/python bench/converge.py --provinces all    # all 34 provinces (~210 hosts)
    .venv/bin/python bench/converge.py --provinces hue,ca_mau

Five timed runs on the same lab, in this order:
  1. first converge as `govops converge` runs it (tuned ansible.cfg, through Mitogen);
  2. second converge, the same (nothing to do: must change nothing);
  3. the same, tuned without Mitogen (GOVOPS_MITOGEN=0);
  4. the same, with Ansible's defaults: ANSIBLE_CONFIG points at an empty file, same inventory,
     same roles, no Mitogen (no pipelining, forks 5, no fact cache, full fact gathering in
     every play);
  5. `--check` on the converged lab, as `govops converge --check` (must report no change).
Goals (issue 19): runs 2-5 change nothing; the steady state (run 2) <= 60 s and >= 3x faster
than Ansible's defaults (run 4); the first converge <= 240 s. The tables after the runs
say where the first and the steady-state runs spend their time, per role and per task.

`--env ENV` measures the steady-state runs (2-5) on a lab already up and converged (`make
lab`'s is `lab`) instead of a throwaway one: quicker, but the lab's own load (probes, scrapes)
is in the figures.

The lab is its own environment (unique name, free /16, private cache with its own SSH key, CA
and secrets; tests/fixtures/lab.py): it never touches a running `make lab`, and is removed at the
end. The lab image is shared through podman's storage (built once if missing).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml
from rich.console import Console
from rich.table import Table

from govops.ansible.converge import ConvergeRequest, ConvergeResult, converge, read_limit_file
from govops.lab.paths import LabPaths

REPO = Path(__file__).resolve().parents[1]
# The throwaway lab is a test fixture (tests/ is not installed): importable from the checkout.
sys.path.insert(0, str(REPO))

from tests.fixtures.lab import make_test_lab  # noqa: E402

console = Console()


DEFAULT = "tuned + Mitogen (default)"
TUNED = "tuned, no Mitogen"
WITHOUT_MITOGEN = {"GOVOPS_MITOGEN": "0"}


class RunningLab:
    """A lab already up and converged (`--env`): converged again as `govops converge` would."""

    def __init__(self, env: str) -> None:
        self.env = env

    def running_hosts(self) -> list[str]:
        return read_limit_file(LabPaths.default().hosts_limit(self.env))

    def converge(self, **kwargs: Any) -> ConvergeResult:
        request = ConvergeRequest(env=self.env, check=bool(kwargs.pop("check", False)))
        return converge(REPO, request, **kwargs)

    def up(self) -> None:  # up already: measured as it stands
        return None

    def down(self) -> None:  # left running: it is the caller's lab
        return None


@dataclass(frozen=True)
class Run:
    name: str
    config: str
    result: ConvergeResult
    peak_gib: float = 0.0


class PeakMemory:
    """The machine's memory in use (total - available: the lab's hosts and the controller
    together), sampled every second; `peak` is the highest since the last `reset`."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            memory = psutil.virtual_memory()
            self.peak = max(self.peak, memory.total - memory.available)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> None:
        self.peak = 0

    @property
    def peak_gib(self) -> float:
        return self.peak / 2**30


def default_provinces() -> list[str]:
    estate = yaml.safe_load((REPO / "inventories/lab/estate.yml").read_text(encoding="utf-8"))
    return list(estate["lab"]["default_provinces"])


def provinces_arg(value: str) -> list[str]:
    if value == "default":
        return default_provinces()
    if value == "all":
        return []  # every province of the estate
    return [p.strip() for p in value.split(",") if p.strip()]


def slowest(run: Run, top: int = 15) -> Table:
    """The tasks (and roles) that held the wall clock longest, with the seconds they took
    summed over hosts (ansible-runner's events)."""
    result = run.result
    table = Table(title=f"{run.name} ({run.config}): slowest of {len(result.task_seconds)}")
    for column in ("task", "wall s", "share", "host-seconds"):
        table.add_column(column, justify="left" if column == "task" else "right")
    total = sum(result.task_wall.values()) or 1.0
    roles: dict[str, list[float]] = {}
    for task in set(result.task_wall) | set(result.task_seconds):
        role = task.split(" : ", 1)[0] if " : " in task else "(playbook)"
        sums = roles.setdefault(role, [0.0, 0.0])
        sums[0] += result.task_wall.get(task, 0.0)
        sums[1] += result.task_seconds.get(task, 0.0)
    ranked = sorted(result.task_wall.items(), key=lambda kv: -kv[1])[:top]
    for task, wall in ranked:
        spent = result.task_seconds.get(task, 0.0)
        table.add_row(task, f"{wall:.1f}", f"{wall / total:.0%}", f"{spent:.1f}")
    for role, (wall, spent) in sorted(roles.items(), key=lambda kv: -kv[1][0])[:6]:
        table.add_row(f"[bold]role {role}[/]", f"{wall:.1f}", f"{wall / total:.0%}", f"{spent:.1f}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--provinces",
        default="default",
        help="default (the lab's 3), all (34), or codenames separated by commas",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="stream Ansible's output instead of a dot a task"
    )
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="skip run 5 (--check); the lab proof (make lab-proof) checks it on the default lab",
    )
    parser.add_argument(
        "--steady-only",
        action="store_true",
        help="runs 1-2 only (with --env: run 2 only): for iterating on a role's steady state",
    )
    parser.add_argument(
        "--top", type=int, default=15, metavar="N", help="the N slowest tasks in each table"
    )
    parser.add_argument(
        "--env",
        default=None,
        metavar="ENV",
        help="measure the steady state on this running, converged lab (make lab's: lab)",
    )
    args = parser.parse_args(argv)
    provinces = provinces_arg(args.provinces)
    env = args.env or f"cb{uuid.uuid4().hex[:6]}"
    runs: list[Run] = []
    took_up, hosts, up_peak = 0.0, 0, 0.0
    with (
        tempfile.TemporaryDirectory(prefix="govops-bench-converge-") as work,
        PeakMemory() as memory,
    ):
        lab = RunningLab(env) if args.env else make_test_lab(REPO, Path(work), env, provinces)
        defaults_cfg = Path(work) / "ansible-defaults.cfg"
        defaults_cfg.write_text("# Ansible's defaults: nothing set.\n", encoding="utf-8")

        def converge(
            name: str, config: str, *, check: bool = False, extra_env: dict[str, str] | None = None
        ) -> ConvergeResult:
            console.print(f"[bold]{name}[/] ({config}) …")
            lines: list[str] = []
            echo = console.print if args.verbose else lines.append
            # Every run starts with cold SSH connections (its own ControlPath directory): the
            # masters a previous run left persisting would otherwise serve the next one.
            environ = {
                **os.environ,
                "GOVOPS_MITOGEN": "1",
                "ANSIBLE_SSH_CONTROL_PATH_DIR": str(Path(work) / f"cp{len(runs)}"),
                **(extra_env or {}),
            }
            memory.reset()
            result = lab.converge(echo=echo, check=check, environ=environ)
            runs.append(Run(name, config, result, memory.peak_gib))
            console.print(
                f"  {result.seconds:.0f} s, changed={result.totals()['changed']}, "
                f"peak memory {memory.peak_gib:.1f} GiB"
            )
            if not result.ok:
                console.print("\n".join(lines[-40:]), markup=False, highlight=False)
                console.print(f"[red]failed on {result.failed_hosts}[/]")
            return result

        try:
            first: ConvergeResult | None = None
            if not args.env:
                console.print(f"[bold]lab up[/] {env}: provinces {args.provinces} …")
            started = time.perf_counter()
            lab.up()
            took_up = time.perf_counter() - started
            up_peak = memory.peak_gib
            hosts = len(lab.running_hosts())
            console.print(f"  {hosts} hosts in {took_up:.0f} s")
            if not args.env:
                first = converge("1. first converge", DEFAULT)
            if first is None or first.ok:
                converge("2. second converge", DEFAULT)
                if not args.steady_only:
                    converge("3. second converge", TUNED, extra_env=WITHOUT_MITOGEN)
                    converge(
                        "4. second converge",
                        "Ansible defaults",
                        extra_env={"ANSIBLE_CONFIG": str(defaults_cfg), **WITHOUT_MITOGEN},
                    )
                    if not args.no_check:
                        converge("5. converge --check", DEFAULT, check=True)
        finally:
            lab.down()

    table = Table(title=f"govops converge benchmark: {hosts} hosts ({args.provinces} provinces)")
    columns = ("run", "ansible.cfg", "seconds", "hosts", "changed (hosts)", "failed", "peak GiB")
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "ansible.cfg") else "right")
    table.add_row("lab up", "", f"{took_up:.0f}", str(hosts), "", "", f"{up_peak:.1f}")
    for run in runs:
        totals = run.result.totals()
        table.add_row(
            run.name,
            run.config,
            f"{run.result.seconds:.0f}",
            str(len(run.result.recap)),
            f"{totals['changed']} ({len(run.result.changed_hosts)})",
            str(len(run.result.failed_hosts)),
            f"{run.peak_gib:.1f}",
        )
    console.print(table)
    # Where the first and the steady-state runs spend their time.
    for run in runs[: 3 if first is not None else 2]:
        console.print(slowest(run, args.top))
    by_name = {(r.name, r.config): r.result for r in runs}
    plain = by_name.get(("4. second converge", "Ansible defaults"))
    for name, config in (("2. second converge", DEFAULT), ("3. second converge", TUNED)):
        tuned = by_name.get((name, config))
        if tuned and plain and tuned.seconds > 0:
            console.print(
                f"steady state, {config}: {tuned.seconds:.0f} s (goal <= 60 s), "
                f"{plain.seconds / tuned.seconds:.1f}x faster than Ansible's defaults "
                f"({plain.seconds:.0f} s; goal >= 3x)"
            )
    if first is not None:
        console.print(f"first converge: {first.seconds:.0f} s (goal <= 240 s)")
    expected = 2 if args.steady_only else (4 if args.no_check else 5)
    expected -= 1 if args.env else 0
    ok = len(runs) == expected and all(r.result.ok for r in runs)
    steady = runs[1:] if first is not None else runs
    idempotent = ok and all(not r.result.changed_hosts for r in steady)
    console.print(f"all runs ok: {ok}; runs after the first changed nothing: {idempotent}")
    return 0 if idempotent else 1


if __name__ == "__main__":
    sys.exit(main())
