"""Showing a run as it goes: Rich progress (provinces × steps) on a terminal, plain timestamped
lines otherwise (CI logs, `| tee`)."""

from __future__ import annotations

import threading
from dataclasses import replace
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from govops.redact import redact_text
from govops.runbook.engine import Event
from govops.runbook.timeutil import clock

FINISHED = ("done", "failed", "waiting")
STYLE = {
    "done": "green",
    "failed": "red",
    "waiting": "yellow",
    "rolled_back": "magenta",
    "rollback_failed": "bold red",
    "retrying": "yellow",
}


class Display:
    def __init__(self, console: Console, provinces: list[str], steps: int) -> None:
        self.console = console
        self.interactive = console.is_terminal
        self.lock = threading.Lock()
        self.steps = steps
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.counts: dict[str, int] = {}
        if self.interactive:
            self.progress = Progress(
                TextColumn("{task.description:<16}"),
                BarColumn(bar_width=30),
                MofNCompleteColumn(),
                TextColumn("{task.fields[now]}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            for p in provinces:
                self.tasks[p] = self.progress.add_task(p, total=steps, now="pending")

    def __enter__(self) -> Display:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: Event) -> None:
        if event.message:  # a step's message may quote a URL or a command line
            event = replace(event, message=escape(redact_text(event.message)))
        with self.lock:
            if self.progress is not None:
                self._rich(event, self.progress)
            else:
                self._plain(event)

    def _rich(self, event: Event, progress: Progress) -> None:
        task = self.tasks.get(event.province)
        if event.kind in ("notice", "halt", "wave"):
            progress.console.print(f"[bold]{event.kind}[/]: {event.message}", highlight=False)
            return
        if task is None:
            return
        if event.kind == "step":
            label = f"{event.step} [{STYLE.get(event.status, 'cyan')}]{event.status}[/]"
            if event.status == "done":
                self.counts[event.province] = self.counts.get(event.province, 0) + 1
                progress.update(task, completed=self.counts[event.province], now=label)
            else:
                progress.update(task, now=label)
            if event.status == "failed":
                progress.console.print(
                    f"[red]failed[/] {event.province} {event.step}: {event.message}",
                    highlight=False,
                )
        elif event.kind in ("province", "rollback") and not event.step:
            style = STYLE.get(event.status, "cyan")
            progress.update(task, now=f"[{style}]{event.kind} {event.status}[/]")

    def _plain(self, event: Event) -> None:
        stamp = clock()  # Vietnam's time, whatever the machine's zone
        if event.kind in ("notice", "halt", "wave", "end"):
            text = event.message or event.status
            self.console.print(f"{stamp} {event.kind}: {text}", highlight=False, soft_wrap=True)
            return
        if event.kind == "step" and event.status == "running":
            return  # the result line says it all
        parts = [stamp, event.province]
        parts.append(event.step if event.step else event.kind)
        parts.append(event.status)
        if event.seconds:
            parts.append(f"({event.seconds:.1f}s)")
        line = " ".join(p for p in parts if p)
        if event.message and event.status != "done":
            line += f": {event.message}"
        self.console.print(line, highlight=False, soft_wrap=True)
