"""Running a subprocess within a step's timeout, its output kept in a log file; and finding,
after a crash, whether such a process still runs.

Exactly once needs the process known before it can do anything: each action starts in its own
process group (session), held at a gate — a `sh` reading one line from its stdin — until the
engine has durably recorded its pid and start time (`ctx.on_spawn`); only then is the line
written and the command exec'd (same pid). If the engine dies before that, the gate reads end
of file and the command never runs. The start time (field 22 of /proc/PID/stat, with the boot
id) tells our process from a later one given the same pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from govops.redact import redact_text
from govops.runbook.executors.base import ExecContext, ExecutorError, Interrupted

# The gate: wait for the engine's "go" (EOF: the engine died first, run nothing), then become
# the command with stdin from /dev/null.
GATE = 'read -r go || exit 125; exec "$0" "$@" </dev/null'
GATE_CLOSED = 125
TERM_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a group


@dataclass(frozen=True)
class Finished:
    returncode: int
    output: str
    log: Path


@dataclass(frozen=True)
class Spawned:
    """What the state store keeps of a running action: enough to find it after a crash."""

    pid: int  # also its process group id (start_new_session)
    pstart: str  # "<boot id>:<start time in clock ticks>"
    host: str


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from the state field on (the command name may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return f"{boot_id()}:{fields[19]}" if fields else None  # field 22 overall


def spawned(pid: int) -> Spawned:
    return Spawned(pid, start_time(pid) or "", socket.gethostname())


def group_alive(pgid: int, pstart: str) -> bool:
    """Whether any live (not zombie) process of our group `pgid` remains. The leader, if
    alive, must have the recorded start time (else the pid was reused: ours is gone); without
    the leader, a group id is not reused while members hold it."""
    leader = _stat(pgid)
    if leader is not None and leader[0] != "Z":
        return start_time(pgid) == pstart
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields and fields[0] != "Z" and fields[2] == str(pgid):
            return True
    return False


def end_group(pgid: int, pstart: str, grace: float = TERM_GRACE) -> None:
    """SIGTERM the group, SIGKILL what is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not group_alive(pgid, pstart):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        until = time.monotonic() + wait
        while time.monotonic() < until and group_alive(pgid, pstart):
            time.sleep(0.05)


def _resolve(program: str, cwd: Path | None, env: Mapping[str, str]) -> None:
    """Fail like Popen would for a program that cannot start (the gate would only exit 127)."""
    if "/" in program:
        path = Path(program) if os.path.isabs(program) else (cwd or Path.cwd()) / program
        if not os.access(path, os.X_OK) or path.is_dir():
            raise ExecutorError(f"cannot start {program}: not an executable file")
    elif shutil.which(program, path=env.get("PATH")) is None:
        raise ExecutorError(f"cannot start {program}: not found in PATH")


def run_logged(
    argv: Sequence[str],
    ctx: ExecContext,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """Run `argv` (no shell) in its own process group; its output goes to ctx.log_path; the
    group is killed at the step's timeout, or at the end of an interrupt's grace period
    (Interrupted: the outcome is unknown, settled on resume). An abort lets it finish."""
    log = ctx.log_path
    log.parent.mkdir(parents=True, exist_ok=True)
    environ = {**os.environ, **(env or {}), **ctx.environ()}
    _resolve(argv[0], cwd, environ)
    gate_read, gate_write = os.pipe()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with _scrubbed(log), open(fd, "wb") as out:
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", GATE, *argv],
                cwd=cwd,
                env=environ,
                stdin=gate_read,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: one kill ends it all
            )
        except OSError as exc:
            os.close(gate_write)
            raise ExecutorError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        finally:
            os.close(gate_read)
        info = spawned(proc.pid)
        try:
            ctx.on_spawn(info)  # durable before the command may do anything
            os.write(gate_write, b"go\n")
        except BaseException:
            _kill(proc, info)
            raise
        finally:
            os.close(gate_write)
        while True:
            try:
                returncode = proc.wait(timeout=min(0.2, max(0.01, ctx.remaining())))
                break
            except subprocess.TimeoutExpired:
                # An abort lets a running playbook finish (killing it half-way is worse);
                # the step's timeout kills it, and so does the end of an interrupt's grace.
                if ctx.remaining() <= 0:
                    _kill(proc, info)
                    raise ExecutorError(
                        f"{os.path.basename(argv[0])} timed out after {ctx.timeout:g}s (log {log})"
                    ) from None
                stop_by = ctx.grace()
                if stop_by is not None and time.monotonic() >= stop_by:
                    _kill(proc, info)
                    raise Interrupted(
                        f"{os.path.basename(argv[0])} ended by the interrupt (log {log})"
                    ) from None
    return Finished(returncode, log.read_text(encoding="utf-8", errors="replace"), log)


@contextlib.contextmanager
def _scrubbed(log: Path) -> Iterator[None]:
    """The log is the tool's own output, which may print a URL with its password or a token:
    once the action has ended (or been killed), the file is rewritten through the suite's one
    redaction, so that secrets stay out of the logs as they stay out of the state store. Only
    the operator's account may read it meanwhile."""
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            text = log.read_text(encoding="utf-8", errors="replace")
            clean = redact_text(text)
            if clean != text:
                tmp = log.with_name(log.name + ".redacting")
                tmp.write_text(clean, encoding="utf-8")
                os.replace(tmp, log)
            os.chmod(log, 0o600)


def _kill(proc: subprocess.Popen[bytes], info: Spawned) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=TERM_GRACE)
    end_group(info.pid, info.pstart, grace=0.0)  # what is left of the group (children)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
