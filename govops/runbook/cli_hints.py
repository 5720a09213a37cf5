"""What the cutover commands print for a person to run next: exact, so it works as printed
(the store named when it is not the default one; the lab's rehearsal store found)."""

from __future__ import annotations

import os
from pathlib import Path

from rich.markup import escape

from govops.clikit import err, out
from govops.redact import redact_text
from govops.runbook.state import RUN_FINAL, Store, default_url


def state_arg(store: Store) -> str:
    """` --state URL` for a hint that must work as printed: the store unless it is the default."""
    return "" if store.url == redact_text(default_url()) else f" --state {store.url}"


def lab_stores() -> list[Path]:
    """The lab's rehearsal stores (`govops lab rehearse` keeps its runs per environment)."""
    from govops.lab.paths import LabPaths

    root = LabPaths.default().root
    return sorted(root.glob("*/rehearsal.sqlite3")) if root.is_dir() else []


def hints(stores: list[Path]) -> str:
    return "; ".join(f"govops cutover status --state {escape(redact_text(str(p)))}" for p in stores)


def status_store(state: str | None) -> tuple[str | None, list[Path]]:
    """The store `cutover status` reads, and the lab's stores worth a hint. Without --state
    (nor GOVOPS_RUNBOOK_STATE) and no store at the default place: the lab's rehearsal store if
    there is exactly one; with several, each named."""
    if state is not None or os.environ.get("GOVOPS_RUNBOOK_STATE"):
        return state, []
    labs = lab_stores()
    if labs and not Path(default_url()).exists():
        shown = escape(redact_text(default_url()))
        if len(labs) == 1:
            err.print(
                f"no store at {shown}: reading the lab's {escape(str(labs[0]))}", soft_wrap=True
            )
            return str(labs[0]), labs
        err.print(f"no store at {shown}; the lab's rehearsals: {hints(labs)}", soft_wrap=True)
    return state, labs


def summary(store: Store, run_id: str) -> None:
    """The run's last line: its status, the provinces', and the report command as it works."""
    progress = store.progress(run_id)
    counts: dict[str, int] = {}
    for p in progress.provinces:
        # A province between phases of a run that has ended is not running: it stopped there.
        ended = progress.run.status in RUN_FINAL
        status = "stopped" if p.status == "running" and ended else p.status
        counts[status] = counts.get(status, 0) + 1
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    out.print(
        f"run {run_id}: [bold]{progress.run.status}[/] — provinces: {shown}; "
        f"{len(progress.late)} steps late, {len(progress.at_risk)} at risk. "
        f"Report: govops cutover report {run_id}{escape(state_arg(store))}",
        highlight=False,
        soft_wrap=True,  # a command to copy: never broken over lines
    )
