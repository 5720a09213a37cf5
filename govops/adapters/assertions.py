"""Checks on a JSON answer (`assert:` of the http and operation executors, `success:` of an
adapter's operation). Here, below both, so that an adapter file is validated without the
runbook engine and the runbook's executors share the one definition."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_OPS = (
    "equals",
    "not_equals",
    "in_",
    "gte",
    "lte",
    "gt",
    "lt",
    "exists",
    "contains",
    "excludes",
    "length",
)


class JsonAssert(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    """`path` into the JSON answer (dotted, list indexes as numbers: `items.0.code`; empty for
    the whole body) and one or more checks."""

    path: str = ""
    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None
    exists: bool | None = None
    contains: Any = None
    excludes: Any = None
    length: int | None = None

    @model_validator(mode="after")
    def _some_check(self) -> JsonAssert:
        if not (self.model_fields_set & set(_OPS)):
            raise ValueError(f"at least one check: {', '.join(o.rstrip('_') for o in _OPS)}")
        return self
