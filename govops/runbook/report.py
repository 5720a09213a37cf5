"""The national readiness report of a run: text, JSON, or one self-contained HTML page.

The first table is the dispatch's: each readiness check, N of the run's provinces done, and
beside it what Prometheus and the prober observed (govops/runbook/evidence.py; "evidence
unavailable" when Prometheus cannot be asked) and the figure the government's dispatch counted
at 13:00 on 28 June 2025. Where the steps and the evidence disagree, the report says so per
province. Times are shown in Vietnam's time; the JSON keeps ISO times in UTC.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from importlib import resources

import jinja2

from govops.redact import redact, redact_text
from govops.registry import provinces as registry_provinces
from govops.runbook.evidence import Disagreement, Evidence, compare
from govops.runbook.progress import RunProgress, StepProgress
from govops.runbook.templating import TemplateError, render
from govops.runbook.timeutil import format_duration, shown, shown_epoch

FORMATS = ("text", "json", "html")


NO_EVIDENCE = Evidence(False, "not asked")


def render_report(progress: RunProgress, fmt: str, evidence: Evidence = NO_EVIDENCE) -> str:
    """The report in `fmt`, with no secret in it (messages may quote a URL or a command)."""
    progress = with_clears_rendered(progress)
    disagreements = compare(progress.readiness, evidence, progress.run.provinces)
    if fmt == "json":
        data = progress.as_dict()
        data["evidence"] = _evidence_dict(evidence, disagreements)
        return json.dumps(redact(data), ensure_ascii=False, indent=2) + "\n"
    if fmt == "html":
        return redact_text(_html(progress, evidence, disagreements))
    return redact_text(_text(progress, evidence, disagreements))


def strict_exit(progress: RunProgress, evidence: Evidence) -> int:
    """`report --strict`: 3 without evidence, 1 if steps and evidence disagree, else 0."""
    if not evidence.available:
        return 3
    return 1 if compare(progress.readiness, evidence, progress.run.provinces) else 0


def with_clears_rendered(progress: RunProgress) -> RunProgress:
    """Owners and authorities as the province reads them (`{{ name }}` rendered with the
    province's name); a text that does not render stays as written."""
    known = registry_provinces()
    cache: dict[tuple[str, str], str] = {}

    def rendered(text: str, province: str) -> str:
        if "{" not in text:
            return text
        key = (text, province)
        if key not in cache:
            p = known.get(province)
            context = {"province": province, "name": p.name if p else province}
            if p is not None:
                context["code"] = p.code_str
            try:
                cache[key] = render(text, context)
            except TemplateError:
                cache[key] = text
        return cache[key]

    steps = [
        replace(
            s,
            owner=rendered(s.owner, s.province),
            authority=rendered(s.authority, s.province),
        )
        for s in progress.steps
    ]
    return replace(progress, steps=steps)


def evidence_figure(r_check: str, total: int, evidence: Evidence) -> str:
    if not evidence.available:
        return "unavailable"
    seen = evidence.checks.get(r_check)
    if seen is None or not seen.defined:
        return "no evidence"
    if seen.error:
        return "query failed"
    return f"{len(seen.observed)}/{total}"


def _evidence_dict(evidence: Evidence, disagreements: list[Disagreement]) -> dict[str, object]:
    return {
        "available": evidence.available,
        "reason": evidence.reason,
        "source": evidence.source,
        "checks": {
            k: {"query": c.query, "observed": list(c.observed), "error": c.error}
            for k, c in evidence.checks.items()
        },
        "disagreements": [asdict(d) for d in disagreements],
    }


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


def _text(p: RunProgress, evidence: Evidence, disagreements: list[Disagreement]) -> str:
    run = p.run
    out: list[str] = []
    out.append(f"Run {run.id}: {p.runbook.title} — {run.status}")
    out.append(
        f"env {run.env} · T0 {shown_epoch(run.t0)} · {len(run.provinces)} provinces in "
        f"{len(run.waves)} waves · started by {run.created_by} · as of {shown(p.now)}"
    )
    out.append("")
    out.append("National readiness (the dispatch's checks)")
    width = max(len(r.title) for r in p.readiness)
    out.append(f"  {'check':<{width}}  {'steps':>9}  {'observed':>11}  {'dispatch 28 June':>16}")
    for r in p.readiness:
        mine = f"{r.done}/{r.total}" if r.in_runbook else "not run"
        seen = evidence_figure(r.check_id, r.total, evidence)
        out.append(
            f"  {r.title:<{width}}  {mine:>9}  {seen:>11}  {dispatch_figure(r.dispatch_done):>16}"
        )
    if not evidence.available:
        out.append(f"  evidence unavailable: {evidence.reason}")
    elif disagreements:
        out.append("")
        out.append(f"Steps and evidence disagree: {len(disagreements)}")
        for d in disagreements:
            out.append(f"  {d.province:<16} {d.check_id:<28} {d.text}")
    else:
        out.append(f"  steps and evidence agree (Prometheus at {evidence.source})")
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
                f"  {shown_epoch(a.at)}  {a.step_id} ({scope}) by {a.approver}"
                + (f": {a.note}" if a.note else "")
            )
    return "\n".join(out) + "\n"


def _deadline_lines(title: str, steps: list[StepProgress]) -> list[str]:
    lines = ["", f"{title}: {len(steps)}"]
    for s in steps[:200]:
        lines.append(
            f"  {s.province:<16} {s.step_id:<28} due {shown(s.deadline)}  "
            f"expected {format_duration(s.expected_seconds)}  {s.status:<12} owner: {s.owner}"
        )
    if len(steps) > 200:
        lines.append(f"  … and {len(steps) - 200} more")
    return lines


def _html(p: RunProgress, evidence: Evidence, disagreements: list[Disagreement]) -> str:
    template_text = (
        resources.files("govops.runbook").joinpath("templates/report.html.j2").read_text("utf-8")
    )
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["shown"] = shown
    env.filters["duration"] = format_duration
    env.filters["epoch"] = shown_epoch
    tested, total = coverage(p)
    return env.from_string(template_text).render(
        p=p,
        run=p.run,
        t0=p.run.t0,
        evidence=evidence,
        observed=lambda check_id, n: evidence_figure(check_id, n, evidence),
        disagreements=disagreements,
        dispatch=dispatch_figure,
        tested=tested,
        total=total,
    )


def observe(progress: RunProgress, prometheus_url: str | None = None) -> Evidence:
    """Ask the run's Prometheus (its settings' `prometheus_url`, GOVOPS_PROMETHEUS_URL, or
    `prometheus_url` given) for each check's evidence; never raises: a Prometheus that cannot
    be asked is "evidence unavailable"."""
    from govops.errors import InputError
    from govops.paths import cache_dir, repo_root
    from govops.runbook.context import resolve_settings
    from govops.runbook.evidence import gather, prometheus_query
    from govops.runbook.executors.promql import prometheus_authorization
    from govops.runbook.executors.transport import opener

    run = progress.run
    overrides = {k: str(v) for k, v in run.settings.items() if isinstance(v, str | int | float)}
    if prometheus_url:
        overrides["prometheus_url"] = prometheus_url
    try:
        settings = resolve_settings(
            progress.runbook, run.env, repo_root(), cache_dir() / "runbook" / "logs", overrides
        )
        authorization = prometheus_authorization()
    except (InputError, OSError, ValueError) as exc:
        return Evidence(False, f"cannot ask Prometheus: {exc}")
    if not settings.prometheus_url:
        return Evidence(False, "no Prometheus (--prometheus URL or GOVOPS_PROMETHEUS_URL)")
    query = prometheus_query(settings.prometheus_url, opener(settings), authorization)
    start = run.created_at or run.t0
    return gather(
        run.provinces,
        query,
        start,
        progress.now.timestamp(),
        redact_text(settings.prometheus_url),
    )
