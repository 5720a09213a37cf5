"""Runbook files fuzzed: `govops cutover lint` and `run --dry-run` on malformed runbooks end in
exit 2 naming file, line and key — never a traceback, never a hang.

Two kinds of damage: to the text (a value made nasty, a line duplicated into a duplicate key,
deleted, re-indented, an alias bomb inserted) of the committed rehearsal runbook, and to the
data (junk at a random key, a key removed) of a small runbook using every executor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given

from govops.runbook.loader import lint
from tests.fixtures.runbook import ROOT, isolated_cache, runbook_doc, step, write_runbook

from .fuzz_support import (
    FUZZ,
    assert_clean,
    errors_of,
    invoke,
    junk_values,
    mutated_data,
    mutated_text,
)

__all__ = ["isolated_cache"]

REHEARSAL = (ROOT / "runbooks" / "rehearsal.yml").read_text(encoding="utf-8")


def _small() -> dict[str, Any]:
    http = {
        "executor": "http",
        "with": {"url": "{{ counterparts.portal }}/api/{{ province }}", "expect_status": 200},
    }
    gate = {"executor": "promql", "with": {"query": 'up{province="{{ province }}"}', "for": "1m"}}
    manual = {"executor": "manual", "with": {"instructions": "go?", "approvers": ["chair"]}}
    local = {"executor": "local", "with": {"command": ["true"]}}
    return runbook_doc(
        [
            ("prepare", [step("a", action=http, timeout="5m"), step("b", action=local)]),
            (
                "switch",
                [
                    step("c", action=manual, pre=[{"step": "a"}], deadline="T0+2h"),
                    step(
                        "d",
                        action=gate,
                        verify=gate,
                        pre=[{"promql": "up"}],
                        timeout="10m",
                        deadline="T0+3h",
                    ),
                ],
            ),
        ],
        variables={"front": "https://{{ label }}-procedures"},
        settings={"prometheus_url": "http://127.0.0.1:9090"},
    )


SMALL = _small()


def _check_lint(path: Path) -> None:
    result = invoke(["cutover", "lint", str(path)])
    assert_clean(result)
    if result.exit_code == 2:
        found = errors_of(result.output, path.name)
        assert found, result.output
        for error in found:  # every error names its line and key
            assert error["line"] is not None, error[0]
            assert error["key"].strip(), error[0]


def _check_dry_run(path: Path) -> None:
    result = invoke(["cutover", "run", str(path), "--dry-run", "--provinces", "hue"])
    assert_clean(result)


@FUZZ
@given(text=mutated_text(REHEARSAL))
def test_damaged_runbook_text(tmp_path_factory: Any, text: str) -> None:
    path = tmp_path_factory.mktemp("rb") / "rehearsal.yml"
    path.write_text(text, encoding="utf-8")
    _check_lint(path)
    _check_dry_run(path)


@FUZZ
@given(data=mutated_data(SMALL, junk_values()))
def test_damaged_runbook_data(tmp_path_factory: Any, data: dict[str, Any]) -> None:
    path = tmp_path_factory.mktemp("rb") / "small.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _check_lint(path)
    _check_dry_run(path)


def test_the_fuzz_bases_are_clean(tmp_path: Path) -> None:
    """Otherwise every mutation would fail for the same reason and the fuzz test nothing."""
    path = write_runbook(tmp_path / "small.yml", SMALL)
    assert lint(path).errors == []
    assert lint(ROOT / "runbooks" / "rehearsal.yml").errors == []


def test_linting_is_linear_in_the_runbook_size(tmp_path: Path) -> None:
    """2,000 steps took over a minute when lint was quadratic; now about a fifth of a second
    (bench/lint.py times 10,000). Generous bound: CI machines are shared."""
    steps = [
        step(f"s{i}", action={"executor": "http", "with": {"url": "{{ counterparts.portal }}/x"}})
        for i in range(2000)
    ]
    phases = [(f"p{j}", steps[j * 100 : (j + 1) * 100]) for j in range(20)]
    path = write_runbook(tmp_path / "big.yml", runbook_doc(phases))
    started = time.perf_counter()
    result = lint(path)
    took = time.perf_counter() - started
    assert result.errors == [] and result.runbook is not None
    assert took < 10, f"{took:.1f} s for 2,000 steps"
