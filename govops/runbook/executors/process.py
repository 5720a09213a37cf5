"""Running a subprocess within a step's timeout, its output kept in a log file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from govops.runbook.executors.base import ExecContext, ExecutorError


@dataclass(frozen=True)
class Finished:
    returncode: int
    output: str
    log: Path


def run_logged(
    argv: Sequence[str],
    ctx: ExecContext,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """Run `argv` (no shell); its output goes to ctx.log_path; killed (with its children) at
    the step's timeout (an abort lets it finish)."""
    log = ctx.log_path
    log.parent.mkdir(parents=True, exist_ok=True)
    environ = {**os.environ, **(env or {}), **ctx.environ()}
    with log.open("wb") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout kills it all
            )
        except OSError as exc:
            raise ExecutorError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        while True:
            try:
                returncode = proc.wait(timeout=min(0.5, max(0.01, ctx.remaining())))
                break
            except subprocess.TimeoutExpired:
                # An abort lets a running playbook finish (killing it half-way is worse);
                # only the step's timeout kills it.
                if ctx.remaining() <= 0:
                    _kill(proc)
                    raise ExecutorError(
                        f"{os.path.basename(argv[0])} timed out after {ctx.timeout:g}s (log {log})"
                    ) from None
    return Finished(returncode, log.read_text(encoding="utf-8", errors="replace"), log)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
