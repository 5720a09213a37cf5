"""What the fuzz tests (test_fuzz_*.py) share: how a command is judged, and YAML mutations.

A bad input must end in exit 2 with a message naming the file (or the command line's option),
the line where there is one, and the key — never a traceback, never a hang. Every example of
every fuzz test runs under a deadline; the whole fuzz suite runs in well under a minute.
"""

from __future__ import annotations

import copy
import os
import re
from datetime import timedelta
from typing import Any

from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from govops.cli import main

# Modest example counts and a per-example deadline: bounded time is part of what is tested.
# The same examples on every run (CI stays reproducible); GOVOPS_FUZZ_EXAMPLES=2000 searches
# further, with fresh random examples each time.
_DEEPER = int(os.environ.get("GOVOPS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_DEEPER or 100,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=not _DEEPER,
)

# Our errors: `FILE:LINE: key: expected …` (file may be "(command line)", a line may be absent
# for a file that is not there at all); click's own: `Error: Invalid value for '--x': …`.
OUR_ERROR = re.compile(
    r"^(?:error: )?(?P<file>.*?)(?::(?P<line>\d+))?: (?P<key>[^\n]+?): expected ", re.M
)
CLICK_ERROR = re.compile(
    r"^Error: (Invalid value for|No such option|Missing argument|Missing option|Got unexpected"
    r"|Option '[^']+' requires|No such command|Option '[^']+' does not take)",
    re.M,
)


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, args, catch_exceptions=True, env=env)


def assert_clean(result: Result, *, allowed: tuple[int, ...] = (0, 2)) -> None:
    """No traceback; an allowed exit code; exit 2 explains itself (file, key, expected)."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise AssertionError(f"traceback for {result.output!r}:\n{trace}")
    output = result.output + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code in allowed, (result.exit_code, output)
    if result.exit_code == 2:
        assert OUR_ERROR.search(output) or CLICK_ERROR.search(output), output


def errors_of(output: str, file: str) -> list[re.Match[str]]:
    """Our error messages about `file` in `output`."""
    return [m for m in OUR_ERROR.finditer(output) if m["file"].endswith(file)]


# -- YAML text mutations ------------------------------------------------------------------------
# Values a hand-written or hostile file may hold, each a trap for a loader or a validator.
NASTY_VALUES = [
    ".nan",
    ".inf",
    "-.inf",
    "1e400",
    "9" * 5000,
    "-1",
    "0",
    "true",
    "~",
    "[]",
    "{}",
    "[[[[[[",
    "'unterminated",
    '"\\x"',
    "*nowhere",
    "&a [*a]",
    "!!binary aGVsbG8=",
    "!!python/object:os.system x",
    "!custom x",
    "2025-13-45",
    "2025-06-27",
    "2025-06-27T17:00:00",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "T0+99999999999999d",
    "T0-5m",
    "30s",
    "100000000000000000000000000000h",
    '"{{ 1 / 0 }}"',
    '"{{ ((((((((((((((((((((((((((((((((((((((( }}"',
    '"{{ nope }}"',
    '"{% for %}"',
    '"[/red] [bold"',
    "é中文",
    "\t",
    "- a\n- b",
    "a: b: c",
    "|\n  block",
    ">\n  folded",
]


def yaml_bomb(levels: int = 9, width: int = 9) -> str:
    """The billion laughs, in YAML: a few hundred bytes that expand to width**levels nodes."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> str:
    """`text` (YAML) with one to three line-level mutations: a value replaced by a nasty one,
    a line duplicated (a duplicate key), deleted, re-indented, or a bomb or junk inserted."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        kind = draw(
            st.sampled_from(["value", "value", "duplicate", "delete", "indent", "insert", "chars"])
        )
        if kind == "value" and ":" in line:
            head = line.split(":", 1)[0]
            lines[i] = f"{head}: {draw(st.sampled_from(NASTY_VALUES))}"
        elif kind == "duplicate":
            lines.insert(i, line)
        elif kind == "delete":
            del lines[i]
        elif kind == "indent":
            lines[i] = draw(st.sampled_from(["", " ", "  ", "    ", "\t"])) + line.lstrip()
        elif kind == "insert":
            lines.insert(i, draw(st.sampled_from([yaml_bomb(4, 4), "---", "...", "%YAML 1.1"])))
        else:
            junk = draw(st.text(alphabet="{}[]&*!|>:-#'\"% \t,?@`\\", max_size=6))
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + junk + line[at:]
    return "\n".join(lines) + "\n"


def junk_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(10**30), 10**30)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=6,
    )


def key_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into `data` (mapping keys and list indexes), the root first."""
    found = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            found += key_paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += key_paths(v, (*prefix, i))
    return found


@st.composite
def mutated_data(draw: st.DrawFn, base: Any, junk: st.SearchStrategy[Any]) -> Any:
    """`base` with one to three values replaced by `junk` or their keys deleted."""
    data = copy.deepcopy(base)
    paths = [p for p in key_paths(base) if p]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        parent: Any = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            if draw(st.booleans()):
                parent[path[-1]] = draw(junk)
            elif isinstance(parent, dict):
                del parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
    return data
