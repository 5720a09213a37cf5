"""Operations through the estate's adapters, on the prober's host (no govops there).

`govops monitoring prober-config` resolves each system's and counterpart's adapter
(govops/adapters) into the config's `operations`: per interface (`systems.procedures`,
`counterparts.portal`) and operation, the request template (method, path, query, body with
`{{ input }}` placeholders), the statuses that mean success and where the result fields are
in the answer. A check names an operation and its inputs; this makes the request.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ONLY = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    expect_status: tuple[int, ...] = (200,)
    result: dict[str, str] = field(default_factory=dict)  # result field → dotted answer path

    def request(self, base: str, inputs: dict[str, Any]) -> tuple[str, str, Any]:
        """Method, URL and JSON body (None: none) for `inputs` at `base`."""
        path = _text(self.path, inputs, quote=True)
        query = {k: _text(v, inputs, quote=False) for k, v in self.query.items()}
        url = base.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        return self.method, url, _value(self.body, inputs)

    def result_of(self, document: Any) -> dict[str, Any]:
        """The answer with the result fields where the catalog names them."""
        out = dict(document) if isinstance(document, dict) else {}
        for name, path in self.result.items():
            value: Any = document
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            out[name] = value
        return out


Fail = Callable[[str, str, object], Exception]


def parse_operations(data: Any, fail: Fail) -> dict[str, dict[str, Operation]]:
    """The config's `operations` (each key checked; `fail(key, expected, got)` raises)."""
    if not isinstance(data, dict):
        raise fail("operations", "an object of interface → operations", data)
    out: dict[str, dict[str, Operation]] = {}
    for interface, ops in data.items():
        if not isinstance(ops, dict):
            raise fail(f"operations.{interface}", "an object of operation → request", ops)
        out[interface] = {}
        for name, op in ops.items():
            key = f"operations.{interface}.{name}"
            if not isinstance(op, dict):
                raise fail(key, "an object", op)
            if op.get("method") not in METHODS:
                raise fail(f"{key}.method", f"one of {', '.join(METHODS)}", op.get("method"))
            path = op.get("path")
            if not isinstance(path, str) or not path.startswith("/"):
                raise fail(f"{key}.path", "a path starting with /", path)
            query, result = op.get("query") or {}, op.get("result") or {}
            for sub, value in (("query", query), ("result", result)):
                if not isinstance(value, dict) or not all(
                    isinstance(v, str) for v in value.values()
                ):
                    raise fail(f"{key}.{sub}", "an object of name → string", value)
            statuses = op.get("expect_status", [200])
            if (
                not isinstance(statuses, list)
                or not statuses
                or not all(
                    isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599
                    for s in statuses
                )
            ):
                raise fail(f"{key}.expect_status", "a list of HTTP statuses", statuses)
            out[interface][name] = Operation(
                op["method"], path, dict(query), op.get("body"), tuple(statuses), dict(result)
            )
    return out


def _text(template: str, values: dict[str, Any], quote: bool) -> str:
    def one(match: re.Match[str]) -> str:
        value = str(values.get(match.group(1), ""))
        return urllib.parse.quote(value, safe="") if quote else value

    return _PLACEHOLDER.sub(one, template)


def _value(template: Any, inputs: dict[str, Any]) -> Any:
    # As govops.adapters: one placeholder takes the input as it is; absent inputs drop keys.
    if isinstance(template, str):
        only = _ONLY.match(template)
        return inputs.get(only.group(1)) if only else _text(template, inputs, quote=False)
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
