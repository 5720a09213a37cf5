"""The runbook schema: phases of steps, each with its six clears, action, verification, rollback.

A runbook is data (`runbooks/*.yml`); this module only says what a valid one looks like.
Cross-references (step ids, readiness checks, executors' arguments, template variables,
deadline order) are checked by `loader.lint`, which needs the whole file to judge them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    model_validator,
)

from govops.redact import credentials_in_url
from govops.runbook.timeutil import Deadline, parse_duration, parse_time

ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
LABEL_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"  # a Prometheus label name

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Duration = Annotated[float, BeforeValidator(parse_duration)]
DeadlineValue = Annotated[
    Deadline, PlainValidator(Deadline.parse), PlainSerializer(lambda d: d.text, return_type=str)
]
Moment = Annotated[datetime, BeforeValidator(parse_time)]


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("a duration longer than zero")
    return value


PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]


class _Model(BaseModel):
    # allow_inf_nan: a `"nan"` or `"inf"` string is no number either (YAML's .nan and .inf are
    # refused by the loader).
    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, allow_inf_nan=False
    )


class TimeClear(_Model):
    """When: the deadline, and how long the work is expected to take (for the early warning)."""

    deadline: DeadlineValue
    expected: Duration | None = None


class Clears(_Model):
    """The six clears the steering committee asks of every task."""

    people: Text  # who does it: the owner
    work: Text  # what is done
    time: TimeClear  # by when
    responsibility: Text  # who answers for it
    product: Text  # the deliverable that proves it done
    authority: Text  # who approves


class Action(_Model):
    """An executor and its arguments (`with`), validated per executor by the loader."""

    executor: Text
    args: dict[str, Any] = Field(default_factory=dict, alias="with")
    note: str | None = None


class Precondition(_Model):
    """Exactly one of: a step done in this province, a readiness check proven in this province,
    or a PromQL query that must return a non-empty result now."""

    step: str | None = None
    readiness: str | None = None
    promql: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Precondition:
        given = [k for k in ("step", "readiness", "promql") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of step, readiness or promql")
        return self

    def describe(self) -> str:
        if self.step is not None:
            return f"step {self.step} done"
        if self.readiness is not None:
            return f"readiness check {self.readiness} proven"
        return f"PromQL {self.promql!r} non-empty"


class Step(_Model):
    id: str = Field(pattern=ID_PATTERN)
    title: Text
    clears: Clears
    action: Action
    preconditions: tuple[Precondition, ...]
    verify: Action
    rollback: Action
    timeout: PositiveDuration
    retries: int = Field(ge=0, le=20)
    retry_delay: Duration = 5.0
    readiness_check: str | None = None
    foreach: Literal["commune"] | None = None
    concurrency: int = Field(default=8, ge=1, le=64)
    # When a crash leaves it uncertain whether the action took effect (nothing can verify it):
    # true runs it again, false (the default) waits for `govops cutover decide`.
    idempotent: bool = False
    # Planned work (a drain, restart or switch): the alerts it causes are silenced in
    # Alertmanager while it runs (and rolls back). Label → value, templated; "~" starts a
    # regular expression. See silences.py.
    silence: dict[Annotated[str, StringConstraints(pattern=LABEL_PATTERN)], Text] | None = None

    @property
    def expected(self) -> float:
        """Expected duration: the time clear's, else the timeout (the pessimistic bound)."""
        return self.clears.time.expected if self.clears.time.expected is not None else self.timeout


class Phase(_Model):
    id: str = Field(pattern=ID_PATTERN)
    title: Text
    steps: list[Step] = Field(min_length=1)


def _error_budget(value: object) -> int | str:
    if isinstance(value, bool):
        raise ValueError("a number of provinces (0, 1, …) or a percentage like 10%")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,3}%", value) and int(value[:-1]) <= 100:
        return value
    raise ValueError("a number of provinces (0, 1, …) or a percentage like 10%")


ErrorBudget = Annotated[int | str, PlainValidator(_error_budget)]


def allowed_errors(budget: int | str, size: int) -> int:
    """How many failed provinces a wave of `size` tolerates before no new one is started.

    Like AWS SSM's MaxErrors: a percentage is of the wave's size, rounded down."""
    if isinstance(budget, int):
        return budget
    return math.floor(int(budget[:-1]) * size / 100)


class Waves(_Model):
    """Rate control: a pilot wave, then batches; per wave a concurrency and an error budget."""

    pilot: tuple[str, ...] = ()
    pilot_max_errors: ErrorBudget = 0
    batch_size: int = Field(ge=1)
    max_concurrency: int = Field(ge=1, le=64)
    max_errors: ErrorBudget


ALERTMANAGER_AUTH_HELP = (
    "GOVOPS_ALERTMANAGER_TOKEN[_FILE] (a bearer token) or GOVOPS_ALERTMANAGER_USER with "
    "GOVOPS_ALERTMANAGER_PASSWORD[_FILE] (basic auth)"
)
PROMETHEUS_AUTH_HELP = (
    "GOVOPS_PROMETHEUS_TOKEN[_FILE] (a bearer token) or GOVOPS_PROMETHEUS_USER with "
    "GOVOPS_PROMETHEUS_PASSWORD[_FILE] (basic auth)"
)


def _no_credentials(url: str | None) -> str | None:
    """Credentials in a URL would be stored with the run and shown in its messages: refused;
    they come from the environment (executors/promql.py)."""
    found = credentials_in_url(url) if url else []
    if found:
        raise ValueError(
            f"a URL without credentials (found: {', '.join(found)}); give them in "
            + PROMETHEUS_AUTH_HELP
        )
    return url


class Settings(_Model):
    """How executors reach things in an environment; templated with env, cache and root.

    Each can be overridden at run time (`--set NAME=VALUE`, or GOVOPS_<NAME> in the
    environment)."""

    prometheus_url: Annotated[str | None, AfterValidator(_no_credentials)] = None
    # Where steps' planned-work silences go (Alertmanager API v2); credentials as Prometheus's,
    # from GOVOPS_ALERTMANAGER_TOKEN[_FILE] or _USER/_PASSWORD[_FILE].
    alertmanager_url: Annotated[str | None, AfterValidator(_no_credentials)] = None
    ca_bundle: str | None = None
    inventory: str = "inventories/{{ env }}"
    resolve: Literal["dns", "inventory"] = "dns"
    ssh_user: str = "root"
    ssh_key: str | None = None
    known_hosts: str | None = None
    poll_interval: PositiveDuration = 1.0


class Runbook(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    title: Text
    description: str = ""
    t0: Moment | None = None
    waves: Waves
    settings: Settings = Settings()
    vars: dict[str, str] = {}
    phases: list[Phase] = Field(min_length=1)

    def steps(self) -> Iterator[tuple[Phase, Step]]:
        for phase in self.phases:
            for step in phase.steps:
                yield phase, step

    def step(self, step_id: str) -> Step:
        for _, step in self.steps():
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def phase_of(self, step_id: str) -> Phase:
        for phase, step in self.steps():
            if step.id == step_id:
                return phase
        raise KeyError(step_id)

    @property
    def step_ids(self) -> list[str]:
        return [s.id for _, s in self.steps()]


def settings_overrides(raw: dict[str, str]) -> dict[str, Any]:
    """Validate `--set NAME=VALUE` pairs against the Settings fields."""
    known = set(Settings.model_fields)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return dict(raw)
