"""Starting, resuming, approving and aborting runs: what the CLI's commands do, as functions."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from govops.errors import GovopsError, InputError, InputErrors
from govops.paths import cache_dir
from govops.runbook.context import ENV_OVERRIDES, Environment, resolve_settings
from govops.runbook.engine import Observer, RunEngine, _ignore
from govops.runbook.executors import Approval, RunSettings
from govops.runbook.executors.manual import ManualArgs
from govops.runbook.loader import LoadedRunbook, load_snapshot
from govops.runbook.model import Runbook, Settings
from govops.runbook.recording import engine_alive, owner_id
from govops.runbook.scheduler import plan_waves
from govops.runbook.state import (
    DECISIONS,
    RUN_FINAL,
    AuditEntry,
    Batch,
    Decision,
    ProvinceRow,
    RunRecord,
    Store,
    lease_seconds,
)

# Exit codes of `govops cutover run/resume` (documented in its --help).
EXIT = {
    "completed": 0,
    "completed_with_failures": 1,
    "halted": 1,
    "aborted": 1,
    "waiting": 3,
    "running": 1,
    "lost": 4,  # another engine took the run over (this one's lease was lost)
}


def new_run_id(name: str) -> str:
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def check_overrides(runbook: Runbook, path: str, given: Mapping[str, str], kind: str) -> None:
    known = set(runbook.vars) if kind == "--var" else set(Settings.model_fields)
    for name in given:
        if name not in known:
            raise InputError(
                path, kind, f"one of {', '.join(sorted(known)) or '(none declared)'}", got=name
            )


def create_run(
    store: Store,
    loaded: LoadedRunbook,
    environment: Environment,
    *,
    actor: str,
    provinces: Sequence[str] | None = None,
    t0: datetime | None = None,
    variables: Mapping[str, str] | None = None,
    settings: Mapping[str, str] | None = None,
    options: Mapping[str, object] | None = None,
    exclusive: bool = True,
) -> RunRecord:
    """Create the run, claimed by this process. `exclusive`: refused (RunBusy, exit 4) if an
    active run with a live engine holds one of its provinces — checked in the transaction that
    creates it, so two operators starting at once cannot both pass."""
    runbook = loaded.runbook
    variables, settings = dict(variables or {}), dict(settings or {})
    check_overrides(runbook, str(loaded.path), variables, "--var")
    check_overrides(runbook, str(loaded.path), settings, "--set")
    # Settings from the environment are frozen into the run: a resume from another shell
    # must reach the same Prometheus with the same CA.
    for name in ENV_OVERRIDES:
        if (value := os.environ.get(f"GOVOPS_{name.upper()}")) and name not in settings:
            settings[name] = value
    selected = environment.select(provinces)
    start = t0 or runbook.t0 or datetime.now().astimezone()
    now = time.time()
    run = RunRecord(
        id=new_run_id(runbook.name),
        runbook=runbook.name,
        runbook_path=str(loaded.path),
        runbook_text=loaded.text,
        digest=loaded.digest,
        env=environment.env,
        provinces=selected,
        waves=plan_waves(runbook.waves, selected),
        t0=start.timestamp(),
        created_at=now,
        created_by=actor,
        vars={**runbook.vars, **variables},
        settings=settings,
        # The commune count each province had when the run started: coverage is "of how many".
        options={
            **dict(options or {}),
            "communes": {p: len(environment.provinces[p].communes) for p in selected},
        },
        owner=owner_id(),
        heartbeat_at=now,
        owner_actor=actor,
    )
    rows = [ProvinceRow(run.id, p, wave=i) for i, wave in enumerate(run.waves) for p in wave]
    store.create_run(
        run,
        rows,
        AuditEntry(
            run.id,
            now,
            actor,
            "run.create",
            result="running",
            detail=f"{runbook.name} ({loaded.digest[:12]}) on {environment.env}: "
            f"{len(selected)} provinces in {len(run.waves)} waves, T0 {start.isoformat()}",
        ),
        # The same process may hold several runs (tests, benchmarks): others' engines count.
        live=(lambda other: other.owner != run.owner and engine_alive(other, time.time()))
        if exclusive
        else None,
    )
    return run


def engine_for(
    store: Store,
    run: RunRecord,
    environment: Environment,
    *,
    actor: str,
    observer: Observer = _ignore,
    no_wait: bool = False,
) -> RunEngine:
    runbook = load_snapshot(run.runbook_text, run.runbook_path)
    missing = [p for p in run.provinces if p not in environment.provinces]
    if missing:
        raise GovopsError(f"run {run.id}: provinces no longer in the {run.env} estate: {missing}")
    settings = resolve_settings(
        runbook,
        run.env,
        environment.root,
        cache_dir() / "runbook" / "logs" / run.id,
        run.settings,
    )
    return RunEngine(
        store, run, runbook, environment, settings, actor=actor, observer=observer, no_wait=no_wait
    )


def resumable(run: RunRecord) -> None:
    if run.status in RUN_FINAL:
        raise GovopsError(f"run {run.id} is {run.status}: nothing to resume")


def approve(
    store: Store,
    run_id: str,
    step_id: str,
    approver: str,
    *,
    province: str | None = None,
    note: str = "",
) -> Approval:
    run = store.run(run_id)
    runbook = load_snapshot(run.runbook_text, run.runbook_path)
    try:
        step = runbook.step(step_id)
    except KeyError:
        manual = manual_steps(runbook)
        raise InputError(
            run.runbook_path,
            "STEP",
            f"a manual step of the runbook ({', '.join(manual) or 'none'})",
            got=step_id,
        ) from None
    actions = [a for a in (step.action, step.verify) if a.executor == "manual"]
    if not actions:
        raise InputError(
            run.runbook_path, "STEP", "a step with a manual action or verification", got=step_id
        )
    if province is not None and province not in run.provinces:
        raise InputError(
            run.runbook_path,
            "--province",
            f"a province of the run ({', '.join(run.provinces)})",
            got=province,
        )
    allowed = ManualArgs.model_validate(actions[0].args).approvers
    if allowed and approver not in allowed:
        raise InputError(
            run.runbook_path,
            "--as",
            f"one of the step's approvers ({', '.join(allowed)})",
            got=approver,
        )
    approval = Approval(run.id, step_id, province or "", approver, time.time(), note)
    store.add_approval(
        approval,
        AuditEntry(
            run.id,
            approval.at,
            approver,
            "approval",
            province or "",
            step_id,
            result="approved",
            detail=note or step.clears.authority,
        ),
    )
    return approval


def manual_steps(runbook: Runbook) -> list[str]:
    return [s.id for _, s in runbook.steps() if "manual" in (s.action.executor, s.verify.executor)]


def check_approver(runbook: Runbook, path: str, approver: str) -> None:
    """`--approve-as NAME`: NAME must be allowed to approve every manual step."""
    for step_id in manual_steps(runbook):
        step = runbook.step(step_id)
        action = step.action if step.action.executor == "manual" else step.verify
        allowed = ManualArgs.model_validate(action.args).approvers
        if allowed and approver not in allowed:
            raise InputError(
                path,
                "--approve-as",
                f"one of {step_id}'s approvers ({', '.join(allowed)})",
                got=approver,
            )


def approve_all(store: Store, run_id: str, approver: str) -> list[str]:
    """Approve every manual step of the run for every province (an unattended run)."""
    run = store.run(run_id)
    runbook = load_snapshot(run.runbook_text, run.runbook_path)
    steps = manual_steps(runbook)
    for step_id in steps:
        approve(store, run.id, step_id, approver, note="approved up front (--approve-as)")
    return steps


def inventories_of(run: RunRecord) -> Path | None:
    """The inventories folder a run was started with (`--inventories`), if not the checkout's."""
    value = run.options.get("inventories")
    return Path(str(value)) if value else None


def abort(store: Store, run_id: str, actor: str) -> str:
    """Ask the run's engine to stop starting steps; if no engine is alive, take the lease
    (fencing out any engine that might wake up) and mark the run aborted."""
    run = store.run(run_id)
    if run.status in RUN_FINAL:
        raise GovopsError(f"run {run.id} is already {run.status}")
    now = time.time()
    store.request_abort(run.id, AuditEntry(run.id, now, actor, "run.abort", result="requested"))
    stale_before = now + 1 if not engine_alive(run, now) else now - lease_seconds()
    me = f"abort-{owner_id()}"  # never this process's own engine's lease
    fence = store.claim(run.id, me, now, stale_before, actor)
    if fence is None:
        return f"abort requested; the engine ({run.owner}) stops starting steps"
    try:
        store.commit(
            Batch(
                audit=[AuditEntry(run.id, now, actor, "run.end", result="aborted")],
                run_status="aborted",
                run_finished_at=now,
            ),
            run.id,
            fence,
        )
    finally:
        store.release(run.id, me, fence)
    return "no engine was running: run marked aborted"


def decide(
    store: Store,
    run_id: str,
    step_id: str,
    province: str,
    decision: str,
    actor: str,
    note: str = "",
    commune: str | None = None,
) -> list[str]:
    """An operator's word on a step left uncertain in a province (every uncertain commune of a
    `foreach` step): done (it took effect), retry (run it again) or skip (go on without it).
    Recorded (append-only, audited); the engine applies it on resume. Returns the items."""
    run = store.run(run_id)
    if decision not in DECISIONS:
        raise InputError("(command line)", "DECISION", " or ".join(DECISIONS), got=decision)
    if province not in run.provinces:
        raise InputError(
            run.runbook_path,
            "--province",
            f"a province of the run ({', '.join(run.provinces)})",
            got=province,
        )
    rows = [r for r in store.steps(run.id) if r.province == province and r.status == "uncertain"]
    chosen = [r for r in rows if r.step_id == step_id and commune in (None, r.item)]
    if not chosen and commune is not None and any(r.step_id == step_id for r in rows):
        items = ", ".join(r.item for r in rows if r.step_id == step_id)
        raise InputError(
            run.runbook_path, "--commune", f"a commune uncertain in {step_id} ({items})", commune
        )
    if not chosen:
        uncertain = sorted({r.step_id for r in rows})
        raise InputError(
            run.runbook_path,
            "STEP",
            f"a step uncertain in {province} ({', '.join(uncertain) or 'none is'})",
            got=step_id,
        )
    now = time.time()
    for row in chosen:
        store.add_decision(
            Decision(run.id, province, step_id, row.item, row.attempt, decision, actor, now, note),
            AuditEntry(
                run.id,
                now,
                actor,
                "step.decide",
                province,
                step_id,
                row.item,
                row.idem_key,
                row.attempt,
                result=decision,
                detail=note,
            ),
        )
    return [r.item for r in chosen]


def preflight(runbook: Runbook, settings: RunSettings, source: str) -> None:
    """Refuse to start what cannot finish: gates without a Prometheus, playbooks not written."""
    from govops.runbook.executors.ansible import AnsibleArgs

    errors: list[InputError] = []
    uses_promql = any(
        a.executor == "promql" for _, s in runbook.steps() for a in (s.action, s.verify)
    ) or any(pre.promql for _, s in runbook.steps() for pre in s.preconditions)
    if uses_promql and not settings.prometheus_url:
        errors.append(
            InputError(
                source,
                "settings.prometheus_url",
                "a Prometheus URL for the PromQL gates (--set prometheus_url=URL "
                "or GOVOPS_PROMETHEUS_URL)",
            )
        )
    missing: set[str] = set()
    for _, step in runbook.steps():
        for action in (step.action, step.verify, step.rollback):
            if action.executor != "ansible":
                continue
            playbook = AnsibleArgs.model_validate(action.args).playbook
            if "{" not in playbook and not (settings.root / playbook).is_file():
                missing.add(playbook)
    for playbook in sorted(missing):
        errors.append(InputError(source, f"{playbook}", "an existing playbook (not written yet)"))
    if errors:
        raise InputErrors(errors)
