"""The one YAML loader (govops/yamlio.py) against anything: limits, duplicates, numbers.

Every YAML file the suite reads goes through it (checked below by reading the source), so
what holds here holds for runbooks, estates, endpoint files, inventories and stacks.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govops.errors import InputError
from govops.yamlio import LIMITS, Limits, load_yaml, parse_yaml

from .fuzz_support import FUZZ, NASTY_VALUES, yaml_bomb

ROOT = Path(__file__).resolve().parents[2]

TOKENS = [
    "a",
    "b",
    "key",
    ":",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "\n    ",
    "&x ",
    "*x",
    "&y ",
    "*y",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "'",
    '"',
    "#",
    "<<: ",
    "? ",
    "!!str ",
    "!!map ",
    "!tag ",
    "---\n",
    "...",
    "|\n  ",
    *NASTY_VALUES,
]


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_any_text_loads_or_is_refused_naming_file_and_line(text: str) -> None:
    try:
        parse_yaml(text, "fuzz.yml")
    except InputError as exc:
        message = str(exc)
        assert message.startswith("fuzz.yml"), message
        assert ": expected " in message, message


def test_an_alias_bomb_is_refused_at_once() -> None:
    bomb = yaml_bomb(levels=9, width=9)  # 9**9 ≈ 387 million strings, in 600 bytes
    started = time.perf_counter()
    with pytest.raises(InputError, match="alias"):
        parse_yaml(bomb, "bomb.yml")
    assert time.perf_counter() - started < 0.5
    # A smaller one that would still expand to a million nodes: refused too.
    with pytest.raises(InputError, match="alias"):
        parse_yaml(yaml_bomb(levels=6, width=10), "bomb.yml")


def test_reusing_a_block_per_step_is_fine() -> None:
    steps = "\n".join(f"  - {{id: s{i}, rollback: *nothing}}" for i in range(5000))
    data, _ = parse_yaml(f"nothing: &nothing {{executor: noop}}\nsteps:\n{steps}\n")
    assert data["steps"][4999]["rollback"] == {"executor": "noop"}


def test_recursion_and_depth() -> None:
    with pytest.raises(InputError, match="recursive alias"):
        parse_yaml("a: &a [1, *a]\n", "r.yml")
    with pytest.raises(InputError, match="recursive alias"):
        parse_yaml("a: &a {b: {c: *a}}\n", "r.yml")
    with pytest.raises(InputError, match="levels of nesting"):
        parse_yaml("[" * 100 + "]" * 100, "deep.yml")
    with pytest.raises(InputError, match="valid YAML"):  # libyaml's own limit, no crash
        parse_yaml("[" * 100_000 + "]" * 100_000, "deeper.yml")
    parse_yaml("- " * 60 + "x", "ok.yml")


def test_duplicate_keys_name_both_lines() -> None:
    text = "name: a\ntitle: t\nwaves:\n  batch_size: 1\n  batch_size: 2\n"
    with pytest.raises(InputError) as exc:
        parse_yaml(text, "dup.yml")
    assert str(exc.value) == (
        "dup.yml:5: waves.batch_size: expected each key once in a mapping (first at line 4), "
        "got 'batch_size'"
    )
    # The same key written two ways is the same key.
    with pytest.raises(InputError, match="first at line 1"):
        parse_yaml("1: a\n0x1: b\n", "dup.yml")
    # A merge key's keys may be overridden: that is what a merge is for.
    data, _ = parse_yaml("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n")
    assert data["use"] == {"x": 1, "y": 3}


@pytest.mark.parametrize(
    "value", [".nan", ".NaN", ".inf", "-.inf", "+.Inf", "1.0e+400", "-1.5e+999", "[1, .nan]"]
)
def test_non_finite_numbers_are_refused(value: str) -> None:
    with pytest.raises(InputError, match="finite number"):
        parse_yaml(f"timeout: {value}\n", "n.yml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: " + "9" * 5000, "readable value"),
        ("a: 2025-13-45", "readable value"),
        ("a: !!python/object:os.system x", "plain YAML value"),
        ("a: !!binary aGVsbG8=", "plain YAML value"),
        ("a: !!set {x: null}", "plain YAML mapping"),
        ("? [a]\n: 1", "plain key"),
        ("a: 1\n---\nb: 2", "valid YAML"),
        ("a: 'x", "valid YAML"),
        ("a: \x00", "valid YAML"),
    ],
)
def test_what_the_suite_does_not_read(text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        parse_yaml(text, "x.yml")


def test_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    path.write_text("a: " + "x" * 2000 + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="at most 1000 bytes"):
        load_yaml(path, Limits(max_bytes=1000))
    assert LIMITS.max_bytes >= 16 * 1024 * 1024
    with pytest.raises(InputError, match="existing file"):
        load_yaml(tmp_path / "none.yml")
    (tmp_path / "bin.yml").write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(InputError, match="UTF-8"):
        load_yaml(tmp_path / "bin.yml")


def test_lines_are_found_for_every_path() -> None:
    _, lines = parse_yaml("a:\n  b:\n    - x\n    - y: 1\n      z: 2\n")
    assert lines[("a",)] == 1 and lines[("a", "b")] == 2
    assert lines[("a", "b", 0)] == 3 and lines[("a", "b", 1, "z")] == 5
    assert ("a", "c") not in lines
    assert lines.sub(("a", "b", 1))[("z",)] == 5
    assert dict(lines)[("a", "b", 1, "y")] == 4


def test_every_yaml_read_goes_through_the_one_loader() -> None:
    """yaml.safe_load / yaml.load / yaml.compose appear only in govops/yamlio.py."""
    pattern = re.compile(r"\byaml\.(safe_load|load|full_load|unsafe_load|compose|parse)\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("govops", "exporters")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != ROOT / "govops" / "yamlio.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert not offenders, "read YAML with govops.yamlio (load_yaml/read_yaml/parse_yaml): " + (
        ", ".join(offenders)
    )
