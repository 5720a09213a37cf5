"""The dry run: the plan of a run with the six clears of every step in every province, and
(with --check) each Ansible step run in check mode against the inventory — nothing changes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from govops.redact import redact, redact_text
from govops.runbook.context import Environment, province_vars
from govops.runbook.executors import EXECUTORS, ExecContext, Outcome, RunSettings, executor
from govops.runbook.model import Action, Runbook, Step
from govops.runbook.scheduler import plan_waves, waves_of
from govops.runbook.silences import describe as describe_matchers
from govops.runbook.silences import matchers, window
from govops.runbook.templating import TemplateError, render, render_value
from govops.runbook.timeutil import format_duration, iso, shown

CLEARS = ("people", "work", "responsibility", "product", "authority")
DRY_RUN_ID = "dry-run"


@dataclass(frozen=True)
class PlannedStep:
    phase: str
    step_id: str
    title: str
    province: str
    wave: int
    deadline: datetime
    expected: float
    timeout: float
    retries: int
    readiness_check: str | None
    foreach: str | None
    communes: int
    preconditions: tuple[str, ...]
    clears: dict[str, str]
    action: str
    verify: str
    rollback: str
    silence: str = ""  # the planned work's Alertmanager silence (silences.py), if declared


@dataclass(frozen=True)
class Plan:
    runbook: Runbook
    env: str
    t0: datetime
    waves: list[str]  # one line per wave
    steps: list[PlannedStep]

    def as_dict(self) -> dict[str, Any]:
        return dict(
            redact(
                {
                    "runbook": self.runbook.name,
                    "title": self.runbook.title,
                    "env": self.env,
                    "t0": iso(self.t0),
                    "waves": self.waves,
                    "steps": [asdict(s) | {"deadline": iso(s.deadline)} for s in self.steps],
                }
            )
        )


def describe(action: Action, context: Mapping[str, Any]) -> str:
    spec = EXECUTORS[action.executor]
    try:
        args = spec.Args.model_validate(render_value(action.args, context))
        text = executor(action.executor).describe(args)
        # The executor describes its default limit generically; the plan is per province.
        text = text.replace("province_<province>", f"province_{context.get('province', '')}")
    except (TemplateError, ValidationError) as exc:
        text = f"{action.executor}: cannot render ({str(exc).splitlines()[0]})"
    return text + (f" — {action.note}" if action.note else "")


def build_plan(
    runbook: Runbook,
    environment: Environment,
    selected: Sequence[str],
    t0: datetime,
    variables: Mapping[str, str],
) -> Plan:
    planned = waves_of(runbook.waves, plan_waves(runbook.waves, selected))
    wave_of = {p: w.index for w in planned for p in w.provinces}
    wave_lines = [
        f"{w.label}: {', '.join(w.provinces)} (at most {w.max_concurrency} at once, "
        f"{w.max_errors} failed tolerated)"
        for w in planned
    ]
    steps: list[PlannedStep] = []
    order = [p for w in planned for p in w.provinces]
    for phase, step in runbook.steps():
        for p in order:
            info = environment.provinces[p]
            context = province_vars(environment, info, DRY_RUN_ID, iso(t0), variables)
            context |= {
                "step": step.id,
                "attempt": 1,
                "idempotency_key": f"{DRY_RUN_ID}/{p}/{step.id}",
            }
            if step.foreach == "commune" and info.communes:
                context["commune"] = info.communes[0].as_dict()
            steps.append(
                PlannedStep(
                    phase=phase.id,
                    step_id=step.id,
                    title=step.title,
                    province=p,
                    wave=wave_of[p],
                    deadline=step.clears.time.deadline.resolve(t0),
                    expected=step.expected,
                    timeout=step.timeout,
                    retries=step.retries,
                    readiness_check=step.readiness_check,
                    foreach=step.foreach,
                    communes=len(info.communes) if step.foreach else 0,
                    preconditions=tuple(pre.describe() for pre in step.preconditions),
                    clears={c: _render(getattr(step.clears, c), context) for c in CLEARS},
                    action=describe(step.action, context),
                    verify=describe(step.verify, context),
                    rollback=describe(step.rollback, context),
                    silence=_silence(step, context),
                )
            )
    return Plan(runbook, environment.env, t0, wave_lines, steps)


def _silence(step: Step, context: Mapping[str, Any]) -> str:
    if step.silence is None:
        return ""
    spec = {k: _render(v, context) for k, v in step.silence.items()}
    return f"{describe_matchers(matchers(spec))} for {format_duration(window(step))}"


def _render(text: str, context: Mapping[str, Any]) -> str:
    try:
        return render(text, context)
    except TemplateError:
        return text


def plan_text(plan: Plan) -> str:
    rb = plan.runbook
    provinces = sorted({s.province for s in plan.steps})
    out = [
        f"Plan (dry run): {rb.title} [{rb.name}] on {plan.env}, T0 {shown(plan.t0)}, "
        f"{len(provinces)} provinces",
        "Waves, phase by phase:",
        *(f"  {line}" for line in plan.waves),
    ]
    by_step: dict[str, list[PlannedStep]] = {}
    for s in plan.steps:
        by_step.setdefault(s.step_id, []).append(s)
    phase = ""
    for step_id, rows in by_step.items():
        first = rows[0]
        if first.phase != phase:
            phase = first.phase
            title = next(p.title for p in rb.phases if p.id == phase)
            out += ["", f"Phase {phase}: {title}"]
        extra = []
        if first.readiness_check:
            extra.append(f"proves {first.readiness_check}")
        if first.foreach:
            extra.append("per commune")
        out.append(
            f"  {step_id}: {first.title} — deadline {shown(first.deadline)}, expected "
            f"{format_duration(first.expected)}, timeout {format_duration(first.timeout)}, "
            f"retries {first.retries}" + (f" ({'; '.join(extra)})" if extra else "")
        )
        out.append(f"    preconditions: {', '.join(first.preconditions) or 'none'}")
        same = {c for c in CLEARS if len({r.clears[c] for r in rows}) == 1}
        for c in CLEARS:
            if c in same:
                out.append(f"    {c}: {first.clears[c]}")
        for r in rows:
            differing = "; ".join(f"{c}: {r.clears[c]}" for c in CLEARS if c not in same)
            communes = f" × {r.communes} communes" if r.foreach else ""
            out.append(f"    {r.province:<16} → {r.action}{communes}")
            if differing:
                out.append(f"    {'':<16}   {differing}")
        out.append(f"    verify ({first.province}): {first.verify}")
        out.append(f"    rollback ({first.province}): {first.rollback}")
        if first.silence:
            out.append(f"    silence ({first.province}): {first.silence}")
    return redact_text("\n".join(out) + "\n")


def check_ansible(
    runbook: Runbook,
    environment: Environment,
    selected: Sequence[str],
    settings: RunSettings,
    t0: datetime,
    variables: Mapping[str, str],
    report: Callable[[str, Step, Outcome], None],
) -> bool:
    """Run every Ansible action in check mode (`--check --diff`), province by province."""
    ok = True
    for _, step in runbook.steps():
        if step.action.executor != "ansible":
            continue
        for p in selected:
            info = environment.provinces[p]
            context = province_vars(environment, info, DRY_RUN_ID, iso(t0), variables)
            context |= {
                "step": step.id,
                "attempt": 1,
                "idempotency_key": f"{DRY_RUN_ID}/{p}/{step.id}",
            }
            spec = EXECUTORS["ansible"]
            args = spec.Args.model_validate(render_value(step.action.args, context))
            ctx = ExecContext(
                run_id=DRY_RUN_ID,
                province=p,
                step_id=step.id,
                role="check",
                idempotency_key=context["idempotency_key"],
                attempt=1,
                timeout=step.timeout,
                settings=settings,
                check_mode=True,
            )
            try:
                outcome = executor("ansible").run(args, ctx)
            except Exception as exc:  # reported, the check goes on with the next one
                outcome = Outcome(False, str(exc))
            ok &= outcome.ok
            report(p, step, outcome)
    return ok
