"""`promql`: a Prometheus condition, held true for a duration, sampled at an interval.

Like an Argo Rollouts analysis: the gate passes when every sample over `for` was true; one
false sample starts the hold again; the step's timeout bounds the wait. A sample is true when
the instant query returns at least `min_series` series and, if `op`/`value` are given, every
series' value compares true (so "no data" never passes by accident).

Credentials for a Prometheus that asks for them come from the environment, are sent with
every query (the runbook's promql steps and PromQL preconditions alike) and are never stored
nor printed — and a `prometheus_url` may not hold any (the settings refuse it):

- a bearer token: GOVOPS_PROMETHEUS_TOKEN, or GOVOPS_PROMETHEUS_TOKEN_FILE naming a file
  holding it (a mounted secret; read at each query, so a rotated token is picked up);
- or basic auth: GOVOPS_PROMETHEUS_USER with GOVOPS_PROMETHEUS_PASSWORD or
  GOVOPS_PROMETHEUS_PASSWORD_FILE.
"""

from __future__ import annotations

import base64
import json
import math
import operator
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from govops.errors import InputError
from govops.redact import redact_text
from govops.runbook.executors.base import Args, ExecContext, Executor, ExecutorError, Outcome
from govops.runbook.executors.transport import opener as http_opener
from govops.runbook.model import PROMETHEUS_AUTH_HELP, Duration
from govops.runbook.timeutil import format_duration

Op = Literal["==", "!=", ">", ">=", "<", "<="]
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class PromqlArgs(Args):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    query: str = Field(min_length=1)
    op: Op | None = None
    value: float | None = None
    min_series: int = Field(default=1, ge=0)
    hold: Duration = Field(default=0.0, alias="for")
    interval: Duration = 15.0

    @model_validator(mode="after")
    def _op_with_value(self) -> PromqlArgs:
        if (self.op is None) != (self.value is None):
            raise ValueError("op and value together (or neither)")
        if self.interval <= 0:
            raise ValueError("interval: a duration longer than zero")
        return self


@dataclass(frozen=True)
class Sample:
    ok: bool
    detail: str


class QueryError(ExecutorError):
    """Prometheus refused the query itself: it will not get better by waiting."""


AUTH_ENV = "GOVOPS_PROMETHEUS_"
AUTH_HELP = PROMETHEUS_AUTH_HELP


def _secret(name: str, environ: Mapping[str, str], prefix: str = AUTH_ENV) -> str | None:
    """<prefix><name> (GOVOPS_PROMETHEUS_TOKEN, …), or the content of <prefix><name>_FILE."""
    value = environ.get(prefix + name) or None
    file = environ.get(f"{prefix}{name}_FILE") or None
    if value is not None and file is not None:
        raise InputError(
            "(environment)", f"{prefix}{name}", f"either it or {prefix}{name}_FILE, not both"
        )
    if file is not None:
        try:
            value = Path(file).read_text(encoding="utf-8").strip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                file, f"{prefix}{name}_FILE", "a readable file holding the secret", got=str(exc)
            ) from None
        if not value:
            raise InputError(file, f"{prefix}{name}_FILE", "a file holding the secret (empty)")
    if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InputError(
            file or "(environment)", f"{prefix}{name}", "one line without control characters"
        )
    return value


def prometheus_authorization(environ: Mapping[str, str] | None = None) -> str | None:
    """The Authorization header value for Prometheus, from the environment (see the module's
    docstring); None when no credentials are given. Raises InputError (exit 2) when they are
    given wrongly: run it before starting a run."""
    return authorization(AUTH_ENV, environ)


def authorization(prefix: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The Authorization header from <prefix>TOKEN[_FILE] or <prefix>USER with
    <prefix>PASSWORD[_FILE] (GOVOPS_PROMETHEUS_, GOVOPS_ALERTMANAGER_); None when none given."""
    env = os.environ if environ is None else environ
    token = _secret("TOKEN", env, prefix)
    user = env.get(prefix + "USER") or None
    password = _secret("PASSWORD", env, prefix)
    if token is not None:
        if user is not None or password is not None:
            raise InputError(
                "(environment)", prefix + "TOKEN", "a token or a user and password, not both"
            )
        return f"Bearer {token}"
    if user is None and password is None:
        return None
    if user is None or password is None:
        missing = prefix + ("USER" if user is None else "PASSWORD[_FILE]")
        raise InputError("(environment)", missing, "basic auth: a user and a password")
    if ":" in user or any(ord(c) < 32 for c in user):
        raise InputError("(environment)", prefix + "USER", "a user name without ':'")
    pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {pair}"


def query(base_url: str, promql: str, ctx: ExecContext, timeout: float = 10.0) -> list[float]:
    """The values of an instant query (`/api/v1/query`); a scalar is one value. Sent with the
    credentials of the environment, if any (never across a redirect)."""
    url = f"{base_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    shown = redact_text(base_url)
    try:
        authorization = prometheus_authorization()
    except InputError as exc:
        raise ExecutorError(f"Prometheus credentials: {exc}") from None
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if authorization is not None:
        request.add_unredirected_header("Authorization", authorization)
    opener = http_opener(ctx.settings)
    try:
        with opener.open(request, timeout=max(0.1, min(timeout, ctx.remaining() or timeout))) as r:
            answer = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
        except ValueError:
            answer = None
        error = answer.get("error") if isinstance(answer, dict) else None
        if exc.code in (401, 403):
            given = (
                "credentials refused" if authorization else f"no credentials given ({AUTH_HELP})"
            )
            raise ExecutorError(f"Prometheus at {shown} answered {exc.code}: {given}") from None
        if exc.code in (400, 422) and error is not None:
            raise QueryError(f"Prometheus refused {promql!r}: {error}") from None
        raise ExecutorError(
            f"Prometheus answered {exc.code}" + (f": {error}" if error else "")
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ExecutorError(f"Prometheus at {shown} unreachable: {redact_text(str(exc))}") from None
    try:
        data = answer.get("data") or {}
        kind = data.get("resultType")
        if kind == "scalar":
            return [float(data["result"][1])]
        if kind == "vector":
            return [float(s["value"][1]) for s in data.get("result", [])]
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        raise QueryError(f"{promql!r}: not a Prometheus query answer") from None
    raise QueryError(f"{promql!r}: expected an instant vector or scalar, got {kind}")


def sample(args: PromqlArgs, base_url: str, ctx: ExecContext) -> Sample:
    values = query(base_url, args.query, ctx)
    if len(values) < args.min_series:
        return Sample(False, f"{len(values)} series, expected at least {args.min_series}")
    if args.op is not None and args.value is not None:
        compare = _COMPARE[args.op]
        bad = [v for v in values if math.isnan(v) or not compare(v, args.value)]
        if bad:
            return Sample(
                False,
                f"{len(bad)} of {len(values)} series not {args.op} {args.value:g} "
                f"(e.g. {bad[0]:g})",
            )
    shown = ", ".join(f"{v:g}" for v in values[:3]) + ("…" if len(values) > 3 else "")
    return Sample(True, f"{len(values)} series [{shown}]")


class PromqlExecutor(Executor):
    name = "promql"
    Args = PromqlArgs
    mutates = False

    def run(self, args: Any, ctx: ExecContext) -> Outcome:
        assert isinstance(args, PromqlArgs)
        base = ctx.settings.prometheus_url
        if not base:
            raise ExecutorError(
                "no Prometheus: set prometheus_url in the runbook's settings, "
                "--set prometheus_url=URL or GOVOPS_PROMETHEUS_URL"
            )
        held_since: float | None = None
        samples = 0
        last = Sample(False, "not sampled")
        while True:
            try:
                last = sample(args, base, ctx)
            except QueryError:
                raise
            except ExecutorError as exc:  # Prometheus away: a false sample, not a verdict
                last = Sample(False, str(exc))
            samples += 1
            now = time.monotonic()
            if last.ok:
                held_since = now if held_since is None else held_since
                if now - held_since >= args.hold:
                    held = format_duration(now - held_since)
                    return Outcome(
                        True,
                        f"held {held} over {samples} samples: {last.detail}",
                        {"samples": samples},
                    )
            else:
                held_since = None
            if ctx.remaining() <= 0:
                break
            ctx.wait(args.interval)
        return Outcome(
            False,
            f"{args.query!r} not held {format_duration(args.hold)} within "
            f"{format_duration(ctx.timeout)} ({samples} samples); last: {last.detail}",
            {"samples": samples},
        )

    def describe(self, args: Any) -> str:
        assert isinstance(args, PromqlArgs)
        cond = f" {args.op} {args.value:g}" if args.op and args.value is not None else ""
        hold = f" for {format_duration(args.hold)}" if args.hold else ""
        return f"PromQL {args.query}{cond}{hold}"
