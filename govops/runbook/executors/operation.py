"""`operation`: call an operation of a system or national counterpart (the catalog's,
govops/registry/data/operations.yml) through the environment's adapter, not a URL.

The adapter the estate names (the lab stand-ins' by default) makes the operation one HTTP
request, which the `http` executor's code sends (same TLS, resolution, timeouts, errors);
the adapter's success criterion is checked on the answer, then the step's `assert` on the
operation's result fields (the catalog's names, which the adapter maps from its answer).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from govops.adapters import ResolveError, interface_catalog
from govops.adapters.assertions import JsonAssert
from govops.adapters.estate import request_for
from govops.errors import GovopsError
from govops.registry.estate import Estate, load_estate
from govops.runbook.executors.base import Args, ExecContext, Executor, ExecutorError, Outcome
from govops.runbook.executors.http import (
    _MISSING,
    HttpArgs,
    _excerpt,
    call,
    evaluate,
    lookup,
)
from govops.runbook.model import Duration


class OperationArgs(Args):
    system: str | None = None
    counterpart: str | None = None
    operation: str = Field(min_length=1)
    inputs: dict[str, Any] = Field(default_factory=dict)
    assertions: list[JsonAssert] = Field(default=[], alias="assert")  # on the result fields
    request_timeout: Duration = 30.0

    @property
    def kind(self) -> str:
        return "systems" if self.system else "counterparts"

    @property
    def target(self) -> str:
        return self.system or self.counterpart or ""

    @model_validator(mode="after")
    def _known(self) -> OperationArgs:
        if (self.system is None) == (self.counterpart is None):
            raise ValueError("exactly one of system or counterpart")
        interface = interface_catalog().interface(self.kind, self.target)
        if interface is None:
            names = getattr(interface_catalog(), self.kind)
            raise ValueError(f"{self.kind[:-1]}: one of {', '.join(names)}")
        spec = interface.operations.get(self.operation)
        if spec is None:
            raise ValueError(f"operation: one of {', '.join(interface.operations)}")
        unknown = sorted(set(self.inputs) - set(spec.inputs))
        if unknown:
            raise ValueError(
                f"inputs: among {', '.join(spec.inputs) or 'none'} (not {', '.join(unknown)})"
            )
        for check in self.assertions:
            head = check.path.split(".", 1)[0]
            if head not in spec.result:
                raise ValueError(
                    f"assert: paths start with a result field of {self.operation} "
                    f"({', '.join(spec.result) or 'none'}), not {check.path!r}"
                )
        return self


@cache
def _estate(path: Path) -> Estate:
    return load_estate(path)


class OperationExecutor(Executor):
    name = "operation"
    Args = OperationArgs

    def run(self, args: Any, ctx: ExecContext) -> Outcome:
        assert isinstance(args, OperationArgs)
        what = f"{args.target}.{args.operation}"
        try:
            estate = _estate(ctx.settings.inventory / "estate.yml")
            request = request_for(
                estate, args.kind, args.target, args.operation, dict(args.inputs), ctx.province
            )
        except (ResolveError, GovopsError) as exc:
            raise ExecutorError(f"{what}: {exc}") from None
        http = HttpArgs.model_validate(
            {
                "method": request.method,
                "url": request.url,
                "json": request.body,
                "expect_status": request.expect_status,
                "follow_redirects": request.follow_redirects,
                "request_timeout": args.request_timeout,
            }
        )
        status, body, took = call(http, ctx)
        data: dict[str, Any] = {"status": status, "seconds": round(took, 3), "url": request.url}
        said = f"{what} ({request.method} {request.url})"
        if status not in request.expect_status:
            expected = " or ".join(map(str, request.expect_status))
            return Outcome(
                False, f"{said} answered {status}, expected {expected}: {_excerpt(body)}", data
            )
        try:
            document = json.loads(body) if body else None
        except ValueError:
            document = None
            if request.success or args.assertions:
                return Outcome(False, f"{said}: answer is not JSON: {_excerpt(body)}", data)
        for raw in request.success:
            problem = evaluate(JsonAssert.model_validate(raw), document)
            if problem:
                return Outcome(False, f"{said}: {problem}", data)
        result = result_of(args.kind, args.target, args.operation, request.result, document)
        for check in args.assertions:
            problem = evaluate(check, result)
            if problem:
                return Outcome(False, f"{said}: {problem}", data)
        return Outcome(True, f"{said} → {status}", data)

    def describe(self, args: Any) -> str:
        assert isinstance(args, OperationArgs)
        # The scalar inputs say for whom (province, commune); lists and records would flood.
        shown = " ".join(
            f"{k}={v}" for k, v in args.inputs.items() if isinstance(v, str | int | float)
        )
        return f"operation {args.target}.{args.operation}" + (f" {shown}" if shown else "")


def result_of(
    kind: str, name: str, operation: str, mapping: dict[str, str], document: Any
) -> dict[str, Any]:
    """The operation's result fields (the catalog's) read from the answer where the adapter
    says (default: the field of the same name)."""
    interface = interface_catalog().interface(kind, name)
    fields = interface.operations[operation].result if interface else {}
    out: dict[str, Any] = {}
    for field_name in fields:
        value = lookup(document, mapping.get(field_name, field_name))
        if value is not _MISSING:
            out[field_name] = value
    return out
