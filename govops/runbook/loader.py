"""Load a runbook and lint it: every problem named by file, line and key, all at once.

Beyond the schema (model.py) the linter checks what needs the whole file: unique ids, known
executors and their arguments, references to steps and readiness checks that exist (and come
earlier), template variables that exist, deadlines in order within a phase, pilot provinces
that exist, gates that can pass within their timeout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from govops.errors import GovopsError, InputError, InputErrors
from govops.registry import catalog, provinces
from govops.runbook.executors import EXECUTORS
from govops.runbook.model import Action, Runbook, Step
from govops.runbook.templating import (
    ACTION_VARS,
    FOREACH_VARS,
    PROVINCE_VARS,
    RUN_VARS,
    TemplateError,
    strings_in,
    variables_of,
)
from govops.runbook.timeutil import shown as show
from govops.yamlio import (
    KeyPath,
    Lines,
    key_str,
    line_of,
    load_yaml,
    no_gc,
    parse_yaml,
    validate,
)

ROLES = ("action", "verify", "rollback")


@dataclass(frozen=True)
class LoadedRunbook:
    runbook: Runbook
    path: Path
    text: str
    digest: str
    warnings: tuple[str, ...] = ()


@dataclass
class LintResult:
    path: Path
    errors: list[InputError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    runbook: Runbook | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


SCOPE_LABELS = {"province", "system", "host"}  # the labels of exporters/rules' alerts


def load_runbook(path: Path, root: Path | None = None) -> LoadedRunbook:
    """Load and lint `path`; raise InputErrors naming every problem (exit code 2)."""
    result = lint(path, root)
    if result.errors:
        raise InputErrors(result.errors)
    assert result.runbook is not None
    text = path.read_text(encoding="utf-8")
    return LoadedRunbook(result.runbook, path, text, _digest(text), tuple(result.warnings))


def load_snapshot(text: str, source: str) -> Runbook:
    """The runbook a run was started with (stored in the run): resume never re-reads the file,
    so an edit between a crash and the resume cannot change what the run does."""
    try:
        data, lines = parse_yaml(text, f"{source} (as stored in the run)")
    except InputError as exc:
        raise GovopsError(f"stored runbook: {exc}") from None
    return validate(Runbook, data, Path(source), lines)


def lint(path: Path, root: Path | None = None) -> LintResult:
    """Every problem of the runbook at `path`. Linear in the runbook's size: a 10,000-step
    runbook lints in about a second (bench/lint.py)."""
    with no_gc():  # hundreds of thousands of objects that all live on: nothing to collect
        return _lint(path, root)


def _lint(path: Path, root: Path | None) -> LintResult:
    result = LintResult(path)
    try:
        data, lines = load_yaml(path)
    except InputError as exc:
        result.errors.append(exc)
        return result
    if not isinstance(data, dict):
        result.errors.append(
            InputError(
                path,
                "",
                "a mapping with name, title, waves, phases",
                got=type(data).__name__,
                line=line_of(lines, ()) or 1,
            )
        )
        return result
    try:
        runbook = validate(Runbook, data, path, lines)
    except InputErrors as exc:
        result.errors.extend(exc.errors)
        return result
    _Linter(path, lines, runbook, result, root).check()
    result.errors.sort(key=lambda e: (e.line or 0, e.key))
    if not result.errors:
        result.runbook = runbook
    return result


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Linter:
    def __init__(
        self,
        path: Path,
        lines: Lines,
        runbook: Runbook,
        result: LintResult,
        root: Path | None,
    ) -> None:
        self.path, self.lines, self.runbook, self.result, self.root = (
            path,
            lines,
            runbook,
            result,
            root,
        )
        self.checks = catalog().checks
        self.province_vars = PROVINCE_VARS | set(runbook.vars)
        self.missing_playbooks: set[str] = set()
        self.valid_without_args: set[str] = set()  # executors whose Args accept `with: {}`

    def error(self, key: KeyPath, expected: str, got: object = None) -> None:
        self.result.errors.append(
            InputError(self.path, key_str(key), expected, got, line_of(self.lines, key))
        )

    def warn(self, key: KeyPath, message: str) -> None:
        line = line_of(self.lines, key)
        where = f"{self.path}:{line}" if line else str(self.path)
        self.result.warnings.append(f"{where}: {key_str(key)}: {message}")

    def check(self) -> None:
        rb = self.runbook
        self._templates(("settings",), rb.settings.model_dump(), RUN_VARS)
        for name in rb.vars:
            if name in ACTION_VARS | FOREACH_VARS | RUN_VARS:
                self.error(("vars", name), "a name that is not a built-in variable", got=name)
        self._templates(("vars",), rb.vars, PROVINCE_VARS)
        known = provinces()
        for i, p in enumerate(rb.waves.pilot):
            if p not in known:
                self.error(("waves", "pilot", i), "a province codename (e.g. hue)", got=p)
        seen_phases: set[str] = set()
        seen_steps: dict[str, str] = {}
        proven: set[str] = set()  # readiness checks proven by the steps seen so far
        for pi, phase in enumerate(rb.phases):
            if phase.id in seen_phases:
                self.error(("phases", pi, "id"), "a phase id used once", got=phase.id)
            seen_phases.add(phase.id)
            previous: tuple[str, Any] | None = None
            for si, step in enumerate(phase.steps):
                at: KeyPath = ("phases", pi, "steps", si)
                if step.id in seen_steps:
                    self.error(
                        (*at, "id"),
                        f"a step id used once in the runbook (already in phase "
                        f"{seen_steps[step.id]})",
                        got=step.id,
                    )
                self._step(at, step, seen_steps, proven)
                seen_steps[step.id] = phase.id
                if step.readiness_check:
                    proven.add(step.readiness_check)
                previous = self._deadline_order(at, step, previous)

    def _step(self, at: KeyPath, step: Step, earlier: dict[str, str], proven: set[str]) -> None:
        allowed: set[str] = set(ACTION_VARS) | set(self.runbook.vars)
        if step.foreach == "commune":
            allowed |= FOREACH_VARS
        for role in ROLES:
            action: Action = getattr(step, role)
            self._action((*at, role), action, allowed, step)
        clears = step.clears.model_dump(exclude={"time"})
        self._templates((*at, "clears"), clears, self.province_vars)
        if step.readiness_check is not None:
            check = self.checks.get(step.readiness_check)
            if check is None:
                self.error(
                    (*at, "readiness_check"),
                    f"a readiness check of readiness.yml ({', '.join(self.checks)})",
                    got=step.readiness_check,
                )
            elif check.per_commune and step.foreach != "commune":
                self.error(
                    (*at, "foreach"),
                    f"foreach: commune (readiness check {check.id} is proven per commune)",
                    got=step.foreach,
                )
        if step.silence is not None:
            self._silence((*at, "silence"), step)
        for i, pre in enumerate(step.preconditions):
            key: KeyPath = (*at, "preconditions", i)
            if pre.step is not None and pre.step not in earlier:
                self.error(
                    (*key, "step"),
                    "the id of a step that comes earlier in the runbook",
                    got=pre.step,
                )
            if pre.readiness is not None:
                if pre.readiness not in self.checks:
                    self.error(
                        (*key, "readiness"),
                        f"a readiness check of readiness.yml ({', '.join(self.checks)})",
                        got=pre.readiness,
                    )
                elif pre.readiness not in proven:
                    self.error(
                        (*key, "readiness"),
                        "a readiness check proven by an earlier step (readiness_check:)",
                        got=pre.readiness,
                    )
            if pre.promql is not None:
                self._templates((*key, "promql"), pre.promql, self.province_vars)

    def _silence(self, at: KeyPath, step: Step) -> None:
        """Scoped to what the step touches: a province, system or host matcher, never all."""
        silence = step.silence or {}
        if not SCOPE_LABELS & set(silence):
            self.error(
                at, f"a matcher on {', '.join(sorted(SCOPE_LABELS))} (what the step touches)"
            )
        for label, value in silence.items():
            if value in ("~.*", "~.+"):
                self.error((*at, label), "a value or a narrower regular expression", got=value)
        self._templates(at, dict(silence), self.province_vars)

    def _action(self, at: KeyPath, action: Action, allowed: set[str], step: Step) -> None:
        spec = EXECUTORS.get(action.executor)
        if spec is None:
            self.error(
                (*at, "executor"), f"one of {', '.join(sorted(EXECUTORS))}", got=action.executor
            )
            return
        prefix: KeyPath = (*at, "with")
        if not action.args and action.executor in self.valid_without_args:
            return  # `executor: noop` and the like: nothing to check, thousands of times
        try:
            args = validate(spec.Args, action.args, self.path, self.lines.sub(prefix))
            if not action.args:
                self.valid_without_args.add(action.executor)
        except InputErrors as exc:
            for err in exc.errors:
                if isinstance(err.got, str) and "{{" in err.got:
                    continue  # a template: its type is known once rendered (checked at run)
                key = key_str(prefix) + ("" if err.key == "(top level)" else "." + err.key)
                self.result.errors.append(
                    InputError(
                        self.path,
                        key,
                        err.expected,
                        err.got,
                        err.line or line_of(self.lines, prefix),
                    )
                )
            self._templates(prefix, action.args, allowed)
            return
        self._templates(prefix, action.args, allowed)
        hold = getattr(args, "hold", 0.0) if action.executor == "promql" else 0.0
        if action.executor == "promql" and hold >= step.timeout:
            self.error(
                (*prefix, "for"),
                f"a hold shorter than the step's timeout ({step.timeout:g}s), or the gate "
                "can never pass",
                got=hold,
            )
        if action.executor != "ansible" or self.root is None:
            return
        playbook = getattr(args, "playbook", None)
        if isinstance(playbook, str):
            missing = "{" not in playbook and not (self.root / playbook).is_file()
            if missing and playbook not in self.missing_playbooks:
                self.missing_playbooks.add(playbook)
                self.warn((*prefix, "playbook"), f"{playbook} does not exist yet")

    def _templates(self, at: KeyPath, value: Any, allowed: Iterable[str]) -> None:
        names = allowed if isinstance(allowed, set | frozenset) else set(allowed)
        for sub, text in strings_in(value, templates_only=True):
            key = (*at, *sub)
            try:
                used = variables_of(text)
            except TemplateError as exc:
                self.error(key, str(exc), got=text)
                continue
            for name in sorted(used - names):
                self.error(
                    key,
                    f"template variables among {', '.join(sorted(names))}",
                    got=f"{{{{ {name} }}}}",
                )

    def _deadline_order(
        self, at: KeyPath, step: Step, previous: tuple[str, Any] | None
    ) -> tuple[str, Any]:
        """Deadlines within a phase must not go backwards; relative ones are compared through
        the runbook's t0 when it has one, else only with other relative ones."""
        deadline = step.clears.time.deadline
        t0 = self.runbook.t0
        comparable: tuple[str, Any]
        if deadline.relative and t0 is None:
            comparable = ("relative", deadline.offset)
        else:
            comparable = ("absolute", deadline.resolve(t0) if t0 else deadline.at)
        if previous is not None and previous[0] == comparable[0]:
            before, now = previous[1], comparable[1]
            if before is not None and now is not None and now < before:
                shown = show(before) if isinstance(before, datetime) else f"T0+{before:g}s"
                self.error(
                    (*at, "clears", "time", "deadline"),
                    f"a deadline not before the previous step's ({shown}) within the phase",
                    got=deadline.text,
                )
        return comparable
