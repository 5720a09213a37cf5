"""YAML in and out: the one loader of the suite, and deterministic dumping.

Every YAML file govops and its exporters read goes through `load_yaml` (with line numbers,
for validation) or `read_yaml` / `parse_yaml` (data only). The loader is safe against what a
hand-written or hostile file can hold:

- a document larger than `Limits.max_bytes` is refused before it is parsed;
- nesting deeper than `Limits.max_depth` is refused (libyaml itself stops at 1000);
- aliases: at most `Limits.max_aliases` of them, and what they expand to is bounded, so a
  small "billion laughs" file is refused at once instead of filling memory; a recursive
  alias (`&a [*a]`) is refused;
- a key given twice in one mapping is refused, naming both lines (PyYAML silently keeps the
  last one);
- `.nan`, `.inf` and numbers too large to read are refused: nothing in the suite wants them.

Line numbers let every error name `file:line: key.path`. They are looked up lazily in the
parsed node tree (most loads never need one), so loading stays linear in the file's size.
Deterministic dumping makes `govops render` byte-identical for the same input.

Why over 500 lines: it is the suite's one YAML module on purpose — the safe loader, its
lazy line map, the validation that turns pydantic's errors into file:line:key messages, and
the dumper share key paths and errors; every reader imports this one module to read a file.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from govops.errors import InputError, InputErrors

KeyPath = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Limits:
    """What a YAML document may hold. The defaults fit every file of the suite with room: the
    national runbook is ~60 kB, a 10,000-step generated one ~5 MB."""

    max_bytes: int = 32 * 1024 * 1024
    max_depth: int = 64
    max_aliases: int = 100_000
    # Nodes that aliases add beyond the file's own, at most this many plus four times the
    # file's own count (a runbook reusing a block per step is fine; a bomb is not).
    max_alias_nodes: int = 100_000
    # Ansible's own tags (`!vault |`, `!unsafe`) read as the plain value they tag, for files
    # Ansible reads (playbooks); every other file refuses an unknown tag.
    local_tags: bool = False


LIMITS = Limits()
ANSIBLE = Limits(local_tags=True)

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
# libyaml's parser when present: ~7 times faster than PyYAML's own on a large runbook.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALAR = yaml.ScalarNode


class _Loader(_BaseLoader):  # type: ignore[misc]
    """PyYAML's safe loader, with tag resolution made cheap: it runs for every node of the
    file. Plain scalars' tags (str, int, bool, …) are remembered by value (a runbook repeats
    the same keys and words thousands of times; resolving is a handful of regexes each
    time); lists and mappings take the default tags without a call into the resolver; and
    path resolvers (none are registered for safe loading) are not consulted."""

    _tags: ClassVar[dict[str, str]] = {}
    # Called for every node by the composer; path resolvers are empty: do nothing, in C.
    descend_resolver: ClassVar[Any] = staticmethod({}.get)
    ascend_resolver: ClassVar[Any] = staticmethod({}.clear)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _STR  # quoted: a string
            tag = self._tags.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._tags) < 100_000 and len(value) < 200:
                    self._tags[value] = tag
            return tag
        return _SEQ if kind is yaml.SequenceNode else _MAP


_SCALARS = yaml.constructor.SafeConstructor()

_CONSTRUCT = {
    _BOOL: _SCALARS.construct_yaml_bool,
    _INT: _SCALARS.construct_yaml_int,
    _FLOAT: _SCALARS.construct_yaml_float,
    _TIMESTAMP: _SCALARS.construct_yaml_timestamp,
}


class Lines(Mapping[KeyPath, int]):
    """The 1-based line of every key path of a document, found on demand in its node tree.

    A mapping key's path gives the line of the key; a sequence item's, the item's first line;
    `()` the document's. Keys are matched by value (`1` and `"1"` both find `1:`)."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._root = root
        self._below: tuple[Lines, KeyPath] | None = None  # a `sub` view, found when needed
        self._index: dict[int, dict[object, tuple[yaml.Node, yaml.Node]]] = {}

    @property
    def root(self) -> yaml.Node | None:
        if self._below is not None:
            parent, prefix = self._below
            self._root, self._below = parent.node(prefix), None
        return self._root

    def node(self, path: Iterable[str | int]) -> yaml.Node | None:
        """The value node at `path`, or None if the document has no such path."""
        node = self.root
        for part in path:
            node = self._child(node, part)
            if node is None:
                return None
        return node

    def sub(self, prefix: KeyPath) -> Lines:
        """The lines below `prefix`, with paths relative to it."""
        sub = Lines(None)
        sub._below, sub._index = (self, prefix), self._index
        return sub

    def _entry(self, node: yaml.Node | None, part: object) -> tuple[yaml.Node, yaml.Node] | None:
        if isinstance(node, yaml.MappingNode):
            index = self._index.get(id(node))
            if index is None:
                index = self._index[id(node)] = {}
                for key_node, value_node in _merged_pairs(node):
                    if isinstance(key_node, yaml.ScalarNode):
                        with suppress(ValueError, TypeError, yaml.YAMLError):
                            index.setdefault(_key_of(key_node), (key_node, value_node))
                        index.setdefault(key_node.value, (key_node, value_node))
            try:
                return index.get(part)
            except TypeError:
                return None
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part >= 0:
            items = node.value
            return (items[part], items[part]) if part < len(items) else None
        return None

    def _child(self, node: yaml.Node | None, part: object) -> yaml.Node | None:
        entry = self._entry(node, part)
        return entry[1] if entry is not None else None

    def __getitem__(self, path: KeyPath) -> int:
        if not path:
            if self.root is None:
                raise KeyError(path)
            return int(self.root.start_mark.line) + 1
        parent = self.node(path[:-1])
        entry = self._entry(parent, path[-1])
        if entry is None:
            raise KeyError(path)
        return int(entry[0].start_mark.line) + 1

    def __iter__(self) -> Iterator[KeyPath]:
        """Every key path (for tests and small files: lookups never need it)."""
        if self.root is None:
            return
        stack: list[tuple[yaml.Node, KeyPath, int]] = [(self.root, (), 0)]
        seen: set[int] = set()
        while stack:
            node, path, depth = stack.pop()
            yield path
            if id(node) in seen or depth > LIMITS.max_depth:
                continue  # an alias: its paths below were given once already
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in _merged_pairs(node):
                    if isinstance(key_node, yaml.ScalarNode):
                        key = _key_of(key_node)
                        if isinstance(key, str | int):
                            stack.append((value_node, (*path, key), depth + 1))
            elif isinstance(node, yaml.SequenceNode):
                for i, item in enumerate(node.value):
                    stack.append((item, (*path, i), depth + 1))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _merged_pairs(node: yaml.MappingNode, depth: int = 0) -> list[tuple[yaml.Node, yaml.Node]]:
    """A mapping's key/value pairs with `<<` merges resolved: the mapping's own keys win."""
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    if depth > LIMITS.max_depth:  # a recursive merge (refused when loading anyway)
        return merged
    own: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    merged.extend(_merged_pairs(source, depth + 1))
        else:
            own.append((key_node, value_node))
    return own + merged if merged else own


def _key_of(node: yaml.ScalarNode) -> Any:
    if node.tag == _STR:
        return node.value
    if node.tag == _NULL:
        return None
    construct = _CONSTRUCT.get(node.tag)
    if construct is None:
        raise ValueError(f"unsupported tag {node.tag}")
    return construct(node)


def _same_key(node: yaml.Node, key: object) -> bool:
    if node.__class__ is not yaml.ScalarNode or node.tag == _MERGE:
        return False
    try:
        return bool(_key_of(node) == key)
    except (ValueError, OverflowError, yaml.YAMLError):
        return False


@contextmanager
def no_gc() -> Iterator[None]:
    """Building a large document makes hundreds of thousands of objects that all live on: the
    cyclic collector would scan them again and again (quadratic); it finds nothing here."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Builder:
    """Python data from a composed node tree, in one pass, checking the limits as it goes.

    Hot path: a large runbook has hundreds of thousands of nodes, so scalars (most of them)
    are read inline and the key path is a stack, made into a tuple only for an error."""

    def __init__(self, source: Path | str, limits: Limits) -> None:
        self.source, self.limits = source, limits
        self.built: dict[int, Any] = {}  # id(node) → its value (aliases share it)
        self.sizes: dict[int, int] = {}  # id(node) → nodes it expands to
        self.active: set[int] = set()  # nodes being built (an alias to one is recursive)
        self.path: list[str | int] = []
        self.nodes = 0  # the document's own nodes
        self.aliases = 0
        self.expanded = 0  # nodes added by aliases

    def fail(
        self, node: yaml.Node, expected: str, got: object = None, last: str | int | None = None
    ) -> NoReturn:
        path = (*self.path, last) if last is not None else tuple(self.path)
        shown = key_str(path)
        if len(shown) > 120:
            shown = "…" + shown[-119:]
        raise InputError(self.source, shown, expected, got=got, line=node.start_mark.line + 1)

    def finish(self, root: yaml.Node) -> None:
        allowed = self.limits.max_alias_nodes + 4 * self.nodes
        if self.expanded > allowed:
            self.fail(root, f"aliases expanding to at most {allowed} nodes", self.expanded)

    def value(self, node: yaml.Node) -> tuple[Any, int]:
        """The value of any node and how many nodes it expands to."""
        if node.__class__ is _SCALAR:
            self.nodes += 1
            return (node.value if node.tag == _STR else self.scalar(node)), 1
        return self.collection(node)

    def collection(self, node: yaml.Node) -> tuple[Any, int]:
        key = id(node)
        if key in self.active:
            self.fail(node, "no recursive alias (an alias inside its own anchor)")
        if key in self.built:  # seen before: this is an alias of it
            self.aliases += 1
            if self.aliases > self.limits.max_aliases:
                self.fail(node, f"at most {self.limits.max_aliases} aliases")
            size = self.sizes[key]
            self.expanded += size
            if self.expanded > self.limits.max_alias_nodes * 100:  # a bomb: stop right here
                self.fail(node, "aliases expanding to a bounded document (an alias bomb?)")
            return self.built[key], size
        if len(self.path) >= self.limits.max_depth:
            self.fail(node, f"at most {self.limits.max_depth} levels of nesting")
        self.nodes += 1
        self.active.add(key)
        path = self.path
        size = 1
        result: Any
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ and not self.local(node.tag):
                self.fail(node, "a plain YAML list", f"tag {node.tag}")
            result = self.built[key] = []
            append = result.append
            plain = 0
            for i, item in enumerate(node.value):
                if item.__class__ is _SCALAR and item.tag == _STR:
                    append(item.value)
                    plain += 1
                    continue
                path.append(i)
                value, n = self.value(item)
                path.pop()
                append(value)
                size += n
            size += plain
            self.nodes += plain
        elif isinstance(node, yaml.MappingNode):
            if node.tag != _MAP and not self.local(node.tag):
                self.fail(node, "a plain YAML mapping", f"tag {node.tag}")
            result = self.built[key] = {}
            size += self.mapping(node, result)
        else:  # pragma: no cover - the composer makes only these three
            self.fail(node, "a YAML value")
        self.active.discard(key)
        self.sizes[key] = size
        return result, size

    def mapping(self, node: yaml.MappingNode, mapping: dict[Any, Any]) -> int:
        path = self.path
        size = plain = 0
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.__class__ is not _SCALAR:
                self.fail(key_node, "a plain key (a string or a number)", "a list or mapping")
            if key_node.tag == _STR:
                key = key_node.value
            elif key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            else:
                key = self.scalar(key_node)
            if key in mapping:
                first = next(k for k, _ in node.value if _same_key(k, key))
                self.fail(
                    key_node,
                    f"each key once in a mapping (first at line {first.start_mark.line + 1})",
                    key,
                    last=key_node.value,
                )
            if value_node.__class__ is _SCALAR and value_node.tag == _STR:
                mapping[key] = value_node.value
                size += 2
                plain += 1
                continue
            path.append(key_node.value)
            value, n = self.value(value_node)
            path.pop()
            mapping[key] = value
            size += 1
            size += n
        self.nodes += len(node.value) + plain  # keys, plain values (the others: as built)
        if merges:  # `<<: *defaults`: the mapping's own keys win
            path.append("<<")
            for value_node in merges:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    value, n = self.value(source)
                    if not isinstance(value, dict):
                        self.fail(source, "a mapping (or list of mappings) to merge", value)
                    for k, v in value.items():
                        mapping.setdefault(k, v)
                    size += n
            path.pop()
        return size

    def local(self, tag: str) -> bool:
        return self.limits.local_tags and tag.startswith("!")

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        construct = _CONSTRUCT.get(tag)
        if construct is None:
            if self.local(tag):
                return node.value
            self.fail(node, "a plain YAML value (string, number, boolean, date)", f"tag {tag}")
        try:
            value = construct(node)
        except (ValueError, OverflowError, yaml.YAMLError) as exc:
            self.fail(node, "a readable value", f"{node.value[:40]!r} ({exc})")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(node, "a finite number (not .nan or .inf)", node.value)
        return value


def parse_yaml(
    text: str, source: Path | str = "<yaml>", limits: Limits = LIMITS
) -> tuple[Any, Lines]:
    """Parse `text` (read from `source`, for messages); the data and its lines."""
    if len(text) > limits.max_bytes:
        raise InputError(source, "", f"a document of at most {limits.max_bytes} bytes", len(text))
    try:
        with no_gc():
            loader = _Loader(text)
            try:
                root = loader.get_single_node()
            finally:
                loader.dispose()
            lines = Lines(root)
            if root is None:
                return None, lines
            builder = _Builder(source, limits)
            data, _ = builder.value(root)
            builder.finish(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(source, "", "valid YAML", got=problem, line=line) from None
    return data, lines


def load_yaml(path: Path, limits: Limits = LIMITS) -> tuple[Any, Lines]:
    """Parse the file `path`; return the data and the 1-based line of every key path."""
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise InputError(path, "", f"a file of at most {limits.max_bytes} bytes", size)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "", "an existing file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the name
        raise InputError(path, "", "a readable UTF-8 file", got=str(exc)) from None
    return parse_yaml(text, path, limits)


def read_yaml(path: Path, limits: Limits = LIMITS) -> Any:
    """The data of the YAML file `path` (errors still name file, line and key)."""
    return load_yaml(path, limits)[0]


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
