"""The operation catalog, adapter files and the resolution of an operation to a request."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from govops.adapters.assertions import JsonAssert
from govops.errors import GovopsError, InputError
from govops.yamlio import load_yaml, validate

DATA = Path(__file__).resolve().parent.parent / "registry" / "data"
KINDS = ("systems", "counterparts")
PaymentMode = Literal["test_mode", "zero_authorization"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperationSpec(_Model):
    summary: str = Field(min_length=1)
    inputs: dict[str, str] = Field(default_factory=dict)
    result: dict[str, str] = Field(default_factory=dict)
    idempotent: bool
    writes: bool
    synthetic: bool = False  # creates a synthetic record the caller withdraws


class Interface(_Model):
    summary: str = Field(min_length=1)
    operations: dict[str, OperationSpec]


class InterfaceCatalog(_Model):
    systems: dict[str, Interface]
    counterparts: dict[str, Interface]

    def interface(self, kind: str, name: str) -> Interface | None:
        found: Interface | None = getattr(self, kind, {}).get(name)
        return found


@cache
def interface_catalog() -> InterfaceCatalog:
    path = DATA / "operations.yml"
    data, lines = load_yaml(path)
    return validate(InterfaceCatalog, data, path, lines)


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ONLY = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")


class AdapterOperation(_Model):
    """One operation as this vendor's system answers it: a request and its success criterion.
    `path`, `query` and `body` hold `{{ input }}` placeholders; `result` maps each result field
    of the catalog to a dotted path in the JSON answer (default: the same name)."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = Field(pattern=r"^/")
    query: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    expect_status: int | list[int] = 200
    success: list[dict[str, Any]] = Field(default_factory=list)  # JSON assertions (http's)
    result: dict[str, str] = Field(default_factory=dict)
    follow_redirects: bool = True
    # Payment only: how this vendor takes a payment without moving money.
    payment_modes: list[PaymentMode] | None = None

    @model_validator(mode="after")
    def _checks(self) -> AdapterOperation:
        for item in self.success:
            JsonAssert.model_validate(item)
        return self


class Adapter(_Model):
    """How one vendor's system answers the operations of one interface."""

    interface: str = Field(pattern=r"^(systems|counterparts)\.[a-z_]+$")
    vendor: str = Field(min_length=1)
    # Where the system is, when not where the estate says ({{ label }}, {{ dot_domain }},
    # {{ province }} and {{ code }} are known): a vendor's own host name, port or prefix.
    base: str | None = Field(default=None, pattern=r"^https?://")
    operations: dict[str, AdapterOperation]


@dataclass(frozen=True)
class Request:
    """An operation resolved for one call: what the http executor sends and expects."""

    method: str
    url: str
    body: Any
    expect_status: list[int]
    success: list[dict[str, Any]]
    result: dict[str, str]
    follow_redirects: bool


class ResolveError(GovopsError):
    """The operation cannot be made into a request (not implemented, an input missing)."""


def standin_adapter_path(kind: str, name: str) -> Path:
    return DATA / "adapters" / "standin" / kind / f"{name}.yml"


@cache
def load_adapter(path: Path) -> Adapter:
    """Load and validate an adapter file against the catalog; every problem is an InputError
    naming the file, line and key."""
    data, lines = load_yaml(path)
    adapter = validate(Adapter, data, path, lines)
    kind, name = adapter.interface.split(".", 1)
    interface = interface_catalog().interface(kind, name)
    if interface is None:
        raise InputError(
            path,
            "interface",
            "a system or counterpart of the operation catalog",
            got=name,
            line=lines.get(("interface",)),
        )
    for op_name, op in adapter.operations.items():
        spec = interface.operations.get(op_name)
        where = ("operations", op_name)
        if spec is None:
            raise InputError(
                path,
                f"operations.{op_name}",
                f"an operation of {adapter.interface} ({', '.join(interface.operations)})",
                got=op_name,
                line=lines.get(where),
            )
        for field_name in op.result:
            if field_name not in spec.result:
                raise InputError(
                    path,
                    f"operations.{op_name}.result.{field_name}",
                    f"a result field of {op_name} ({', '.join(spec.result) or 'none'})",
                    got=field_name,
                    line=lines.get((*where, "result", field_name)),
                )
        for used in _placeholders([op.path, op.query, op.body]):
            if used not in spec.inputs:
                raise InputError(
                    path,
                    f"operations.{op_name}",
                    f"placeholders among the inputs of {op_name} "
                    f"({', '.join(spec.inputs) or 'none'})",
                    got=used,
                    line=lines.get(where),
                )
    return adapter


def adapter_for(kind: str, name: str, configured: Path | None = None) -> Adapter:
    """The adapter of a system or counterpart: the estate's, else the lab stand-in's."""
    path = configured if configured is not None else standin_adapter_path(kind, name)
    adapter = load_adapter(path)
    if adapter.interface != f"{kind}.{name}":
        raise InputError(
            path, "interface", f"{kind}.{name} (the adapter is named for it)", got=adapter.interface
        )
    return adapter


def resolve(
    adapter: Adapter,
    operation: str,
    inputs: dict[str, Any],
    base: str,
    where: dict[str, str] | None = None,
) -> Request:
    """The request for `operation` with `inputs` at `base` (the adapter's own base, rendered
    with `where`, wins)."""
    op = adapter.operations.get(operation)
    if op is None:
        raise ResolveError(
            f"{adapter.interface}: the {adapter.vendor} adapter does not implement {operation}"
        )
    # Path and query need every input they name; a body leaves out the inputs not given.
    missing = sorted(_placeholders([op.path, op.query]) - set(inputs))
    if missing:
        raise ResolveError(f"{adapter.interface}.{operation}: inputs missing: {', '.join(missing)}")
    if adapter.base:
        base = _text(adapter.base, where or {}, quote=False)
    path = _text(op.path, inputs, quote=True)
    query = {k: _text(v, inputs, quote=False) for k, v in op.query.items()}
    url = base.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    statuses = [op.expect_status] if isinstance(op.expect_status, int) else list(op.expect_status)
    return Request(
        method=op.method,
        url=url,
        body=_value(op.body, inputs),
        expect_status=statuses,
        success=list(op.success),
        result=dict(op.result),
        follow_redirects=op.follow_redirects,
    )


def _placeholders(values: list[Any]) -> set[str]:
    found: set[str] = set()
    for value in values:
        if isinstance(value, str):
            found.update(_PLACEHOLDER.findall(value))
        elif isinstance(value, dict):
            found |= _placeholders(list(value.values()))
        elif isinstance(value, list):
            found |= _placeholders(value)
    return found


def _text(template: str, values: dict[str, Any], quote: bool) -> str:
    def one(match: re.Match[str]) -> str:
        value = str(values.get(match.group(1), ""))
        return urllib.parse.quote(value, safe="") if quote else value

    return _PLACEHOLDER.sub(one, template)


def _value(template: Any, inputs: dict[str, Any]) -> Any:
    """A body template with the inputs: a string that is one placeholder takes the input's
    value as it is (a list stays a list); an input not given leaves its key out."""
    if isinstance(template, str):
        only = _ONLY.match(template)
        if only:
            return inputs.get(only.group(1))
        return _text(template, inputs, quote=False)
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            only = _ONLY.match(value) if isinstance(value, str) else None
            if only and only.group(1) not in inputs:
                continue
            out[key] = _value(value, inputs)
        return out
    if isinstance(template, list):
        return [_value(v, inputs) for v in template]
    return template
