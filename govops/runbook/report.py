"""The national readiness report of a run: text, JSON, or one self-contained HTML page.

The first table is the dispatch's: each readiness check, N of the run's provinces done, and
beside it the figure the government's dispatch counted at 13:00 on 28 June 2025.
"""

from __future__ import annotations

import json
from importlib import resources

import jinja2

from govops.redact import redact, redact_text
from govops.runbook.progress import RunProgress, StepProgress
from govops.runbook.timeutil import format_duration, from_epoch, iso

FORMATS = ("text", "json", "html")


def render_report(progress: RunProgress, fmt: str) -> str:
    """The report in `fmt`, with no secret in it (messages may quote a URL or a command)."""
    if fmt == "json":
        return json.dumps(redact(progress.as_dict()), ensure_ascii=False, indent=2) + "\n"
    if fmt == "html":
        return redact_text(_html(progress))
    return redact_text(_text(progress))


def dispatch_figure(value: int | None) -> str:
    return f"{value}/34" if value is not None else "—"


def coverage(progress: RunProgress) -> tuple[int, int]:
    """Communes tested at least once, of how many (over the run's provinces)."""
    tested = total = 0
    seen: dict[str, tuple[int, int]] = {}
    for c in progress.communes:  # several foreach steps: the province's best coverage counts
        best = seen.get(c.province, (0, c.total))
        seen[c.province] = (max(best[0], c.tested), c.total)
    for t, n in seen.values():
        tested, total = tested + t, total + n
    return tested, total


def _text(p: RunProgress) -> str:
    run = p.run
    out: list[str] = []
    out.append(f"Run {run.id}: {p.runbook.title} — {run.status}")
    out.append(
        f"env {run.env} · T0 {iso(from_epoch(run.t0))} · {len(run.provinces)} provinces in "
        f"{len(run.waves)} waves · started by {run.created_by} · as of {iso(p.now)}"
    )
    out.append("")
    out.append("National readiness (the dispatch's checks)")
    width = max(len(r.title) for r in p.readiness)
    out.append(f"  {'check':<{width}}  {'this run':>9}  {'dispatch 28 June':>16}")
    for r in p.readiness:
        mine = f"{r.done}/{r.total}" if r.in_runbook else "not run"
        out.append(f"  {r.title:<{width}}  {mine:>9}  {dispatch_figure(r.dispatch_done):>16}")
    if p.communes:
        tested, total = coverage(p)
        out.append("")
        out.append(f"Commune coverage: {tested}/{total} communes tested at least once")
        for c in p.communes:
            mark = "" if c.tested == c.total else "  ← incomplete"
            out.append(f"  {c.province:<16} {c.step_id:<28} {c.tested:>5}/{c.total:<5}{mark}")
    out.append("")
    out.append("Provinces")
    out.append(f"  {'province':<16} {'wave':>4}  {'status':<16} {'steps':>7}  {'checks':>6}  note")
    for pr in p.provinces:
        note = f"{pr.failed_step}: {pr.message}" if pr.failed_step else pr.message
        out.append(
            f"  {pr.province:<16} {pr.wave:>4}  {pr.status:<16} "
            f"{pr.steps_done:>3}/{pr.steps_total:<3}  {len(pr.readiness_done):>6}  {note[:80]}"
        )
    out += _deadline_lines("Late (deadline passed, not done)", p.late)
    out += _deadline_lines("At risk (time left < expected work ahead)", p.at_risk)
    if p.approvals:
        out.append("")
        out.append("Approvals")
        for a in p.approvals:
            scope = a.province or "all provinces"
            out.append(
                f"  {iso(from_epoch(a.at))}  {a.step_id} ({scope}) by {a.approver}"
                + (f": {a.note}" if a.note else "")
            )
    return "\n".join(out) + "\n"


def _deadline_lines(title: str, steps: list[StepProgress]) -> list[str]:
    lines = ["", f"{title}: {len(steps)}"]
    for s in steps[:200]:
        lines.append(
            f"  {s.province:<16} {s.step_id:<28} due {iso(s.deadline)}  "
            f"expected {format_duration(s.expected_seconds)}  {s.status:<12} owner: {s.owner}"
        )
    if len(steps) > 200:
        lines.append(f"  … and {len(steps) - 200} more")
    return lines


def _html(p: RunProgress) -> str:
    template_text = (
        resources.files("govops.runbook").joinpath("templates/report.html.j2").read_text("utf-8")
    )
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["iso"] = iso
    env.filters["duration"] = format_duration
    env.filters["epoch"] = lambda seconds: iso(from_epoch(seconds))
    tested, total = coverage(p)
    return env.from_string(template_text).render(
        p=p,
        run=p.run,
        t0=from_epoch(p.run.t0),
        dispatch=dispatch_figure,
        tested=tested,
        total=total,
    )
