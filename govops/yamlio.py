"""YAML in and out: loading that remembers line numbers, and deterministic dumping.

Line numbers let every error name `file:line: key.path`; deterministic dumping makes
`govops render` byte-identical for the same input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from govops.errors import InputError, InputErrors

KeyPath = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def load_yaml(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    """Parse `path`; return the data and the 1-based line of every key path."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "", "an existing file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, "", "a readable UTF-8 file", got=str(exc)) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(path, "", "valid YAML", got=problem, line=line) from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _walk(node: yaml.Node, prefix: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            path = (*prefix, key)
            lines[path] = key_node.start_mark.line + 1
            _walk(value_node, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, index)
            lines[path] = item.start_mark.line + 1
            _walk(item, path, lines)


def key_str(path: Iterable[str | int]) -> str:
    parts: list[str] = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


def line_of(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its nearest ancestor that exists in the file."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def validate(model: type[M], data: Any, path: Path, lines: Mapping[KeyPath, int]) -> M:
    """Validate `data` with pydantic; turn every failure into an InputError naming file:line:key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors: list[InputError] = []
        for err in exc.errors(include_url=False):
            loc: KeyPath = tuple(p for p in err["loc"] if isinstance(p, str | int))
            # Drop pydantic's internal union-branch labels (e.g. "function-after[...]").
            loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
            errors.append(
                InputError(
                    path,
                    key_str(loc),
                    _expected(err),
                    got=err.get("input") if err["type"] != "missing" else None,
                    line=line_of(lines, loc),
                )
            )
        raise InputErrors(errors) from None


def _expected(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "a value (required key is missing)"
    if kind == "extra_forbidden":
        return "no such key (not part of the schema)"
    msg: str = err["msg"]
    for prefix in ("Input should be ", "Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


# libyaml's emitter when present: rendering all 34 provinces is mostly YAML emitting.
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    """Block style, no aliases, unicode kept: stable, readable rendered files."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(data: Any, header: str | None = None) -> str:
    body = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
        indent=2,
    )
    if header:
        return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + body
    return body
