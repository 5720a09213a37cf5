"""One ansible-playbook run through ansible-runner (the library AWX runs playbooks with).

ansible-runner starts ansible-playbook on a pseudo-terminal with its event callback and hands
every event (a play's banner, a task's result on a host, the final stats) to a handler as a
dict. The per-host counts come from the `playbook_on_stats` event and the per-task time and
changes from the result events, never from Ansible's text; each event's `stdout` is what
Ansible printed for it, so streaming it keeps the run's familiar output.

Nothing is left on disk: ansible-runner's private data dir (its artifacts would hold the
command's environment and every result) is a temporary directory removed after the run, and
the handler asks it to keep no event file. Ctrl-C or SIGTERM (in the main thread) cancels the
run: ansible-runner kills ansible-playbook's process group, which a pseudo-terminal's session
keeps out of reach of the terminal's signals (see _Cancel).
"""

from __future__ import annotations

import shlex
import signal
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import ansible_runner
import psutil

from govops.errors import GovopsError

# Ansible's stats keys → the PLAY RECAP's words.
STATS = {
    "ok": "ok",
    "changed": "changed",
    "dark": "unreachable",
    "failures": "failed",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}
RESULTS = frozenset(
    {"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"}
)
# The prompts of --ask-vault-pass, --ask-become-pass and --ask-pass (AWX answers the same).
PROMPTS = {
    "vault": r"Vault password[^:\n]*:\s*?$",
    "become": r"BECOME password[^:\n]*:\s*?$",
    "ssh": r"SSH password:\s*?$",
}
ASK_FLAGS = {
    "--ask-vault-pass": "vault",
    "--ask-vault-password": "vault",
    "-J": "vault",
    "--ask-become-pass": "become",
    "-K": "become",
    "--ask-pass": "ssh",
    "-k": "ssh",
}


class PlaybookNotStarted(GovopsError):
    """ansible-playbook could not be started (exit code 1)."""


@dataclass(frozen=True)
class HostRecap:
    """One host's counts: the PLAY RECAP line, from Ansible's stats."""

    host: str
    ok: int
    changed: int
    unreachable: int
    failed: int
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


@dataclass
class PlaybookRun:
    """What one run did: exit code, ansible-runner's status, recap, time per task, changes."""

    returncode: int
    status: str  # successful, failed, canceled, timeout
    recap: dict[str, HostRecap] = field(default_factory=dict)
    # Seconds per task ("role : task"), summed over the hosts it ran on.
    task_seconds: dict[str, float] = field(default_factory=dict)
    # The tasks that reported a change, per host, in the order they ran.
    changes: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    # Wall-clock seconds per task: from its start to the next task's (or play's, or the end),
    # summed over its runs; with the linear strategy this is what the run waits on.
    task_wall: dict[str, float] = field(default_factory=dict)


def recap_from_stats(stats: Mapping[str, Any]) -> dict[str, HostRecap]:
    """Per-host counts from a `playbook_on_stats` event's data."""
    hosts: set[str] = set(stats.get("processed") or {})
    for key in STATS:
        hosts.update(stats.get(key) or {})
    return {
        host: HostRecap(
            host=host,
            **{word: int((stats.get(key) or {}).get(host, 0)) for key, word in STATS.items()},
        )
        for host in sorted(hosts)
    }


def asked_passwords(args: Sequence[str]) -> list[str]:
    """Which passwords (vault, become, ssh) the arguments ask for at a prompt."""
    kinds = []
    for arg in args:
        kind = ASK_FLAGS.get(arg)
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    return kinds


def task_name(data: Mapping[str, Any]) -> str:
    task = str(data.get("task") or "?")
    role = data.get("role")
    return f"{role} : {task}" if role else task


def _playbook_processes(program: str) -> list[psutil.Process]:
    """ansible-runner's pseudo-terminal child running `program`: ansible-playbook itself."""
    found = []
    for child in psutil.Process().children():
        with suppress(psutil.Error):
            if program in child.cmdline():
                found.append(child)
    return found


class _Events:
    """ansible-runner's event handler: echoes Ansible's text, keeps the stats and timings."""

    def __init__(
        self,
        echo: Callable[[str], None] | None,
        program: str,
        started: Callable[[int], None] | None,
    ) -> None:
        self.echo = echo
        self.program = program
        self.started = started
        self.recap: dict[str, HostRecap] = {}
        self.task_seconds: dict[str, float] = defaultdict(float)
        self.changes: dict[str, list[str]] = defaultdict(list)
        self.task_wall: dict[str, float] = defaultdict(float)
        self._current: tuple[str, datetime] | None = None

    def _mark(self, event: Mapping[str, Any], name: str | None) -> None:
        """Close the running task's wall span at this event's time; open `name`'s."""
        try:
            at = datetime.fromisoformat(str(event["created"]))
        except (KeyError, ValueError):
            return
        if self._current is not None:
            previous, since = self._current
            self.task_wall[previous] += max(0.0, (at - since).total_seconds())
        self._current = (name, at) if name is not None else None

    def __call__(self, event: dict[str, Any]) -> bool:
        if self.started is not None:
            # The first event comes before any task acts (ansible-runner tells no pid).
            for process in _playbook_processes(self.program):
                self.started(process.pid)
            self.started = None
        text = event.get("stdout")
        if text and self.echo is not None:
            for line in text.splitlines():
                self.echo(line)
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            self._mark(event, task_name(data))
        elif kind == "playbook_on_play_start":
            # Until its first task: the play's own setup (host list, vars files, roles).
            self._mark(event, f"(play) {data.get('play') or data.get('name') or '?'}")
        elif kind == "playbook_on_stats":
            self._mark(event, None)
            # One stats event per ansible-playbook run; a later one (never seen) would win.
            self.recap.update(recap_from_stats(data))
        elif kind in RESULTS:
            name = task_name(data)
            if data.get("duration") is not None:
                self.task_seconds[name] += float(data["duration"])
            if kind == "runner_on_ok" and (data.get("res") or {}).get("changed"):
                self.changes[str(data.get("host"))].append(name)
        return False  # keep no event file in the artifacts


class _Cancel:
    """ansible-runner's cancel callback, asked once a second while ansible-playbook runs.

    A stop (Ctrl-C or SIGTERM in the main thread, or the caller's `cancel`) first sends
    SIGINT to ansible-playbook, as Ctrl-C in a terminal would: it forwards the signal to its
    workers, which run in sessions of their own (ansible-runner's kill reaches none of them
    and leaves them running their task). Only if it has not ended after GRACE seconds is
    ansible-runner told to cancel, which kills its process group.
    """

    GRACE = 10.0

    def __init__(self, program: str, cancel: Callable[[], bool] | None) -> None:
        self.program = program
        self.cancel = cancel
        self.stop = threading.Event()
        self.interrupted_at: float | None = None

    @property
    def stopped(self) -> bool:
        return self.interrupted_at is not None

    def __call__(self) -> bool:
        if self.interrupted_at is None:
            if not (self.stop.is_set() or (self.cancel is not None and self.cancel())):
                return False
            self.interrupted_at = time.monotonic()
            for process in _playbook_processes(self.program):
                with suppress(psutil.Error):
                    process.send_signal(signal.SIGINT)
        return time.monotonic() - self.interrupted_at > self.GRACE

    @contextmanager
    def on_signals(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM stop the run (main thread only); the previous handlers are back
        afterwards (ansible-runner's own would stay installed)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, lambda _sig, _frame: self.stop.set())
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_playbook(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    echo: Callable[[str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    passwords: Mapping[str, str] | None = None,
    started: Callable[[int], None] | None = None,
) -> PlaybookRun:
    """Run `argv` (ansible-playbook and its arguments, exactly) in `cwd` with `env` added to
    this process's environment; `echo` gets Ansible's output line by line as it comes;
    `cancel` is asked about once a second (see _Cancel); `passwords` answer the prompts of
    ASK_FLAGS by kind; `started(pid)` learns ansible-playbook's pid before any task acts (for a
    caller that records what it started). A stopped run has the status "canceled".
    """
    events = _Events(echo, argv[0], started)
    stopper = _Cancel(argv[0], cancel)
    answers = {PROMPTS[kind]: secret for kind, secret in (passwords or {}).items()}
    environ = dict(env)
    # ansible-runner turns host key checking off unless told: keep Ansible's default (on, as
    # the suite's ansible.cfg says too); ANSIBLE_HOST_KEY_CHECKING in `env` still decides.
    environ.setdefault("ANSIBLE_HOST_KEY_CHECKING", "True")
    begun = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="govops-ansible-") as private, stopper.on_signals():
        try:
            runner = ansible_runner.run(
                private_data_dir=private,
                project_dir=str(cwd),  # ansible-playbook's working directory: its ansible.cfg
                binary=argv[0],
                cmdline=shlex.join(argv[1:]),
                envvars=environ,
                # ansible-runner would point the fact cache into its artifacts; ours stays.
                fact_cache_type="none",
                quiet=True,
                suppress_env_files=True,
                settings={"suppress_output_file": True, "pexpect_timeout": 1},
                passwords=answers or None,
                event_handler=events,
                cancel_callback=stopper,
            )
        except OSError as exc:  # ansible-runner lets a failed spawn through
            raise PlaybookNotStarted(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    return PlaybookRun(
        returncode=int(runner.rc if runner.rc is not None else 254),
        status="canceled" if stopper.stopped else str(runner.status),
        recap=events.recap,
        task_seconds=dict(events.task_seconds),
        changes=dict(events.changes),
        seconds=time.monotonic() - begun,
        task_wall=dict(events.task_wall),
    )
