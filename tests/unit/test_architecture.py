"""The layout says the architecture; each module reads in one sitting.

Import rules (layers, independent engines, no import circle) are import-linter's contracts in
pyproject.toml, run by `make lint`; here only what import-linter does not check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("govops", "exporters")
MAX_LINES = 500
# A longer module says why in its docstring, in a paragraph that starts with this.
REASON = "Why over 500 lines:"
# govops/ holds the shared plumbing as modules and everything else as packages: the registry,
# the renderer, one package per engine (ansible, pulumi, lab, runbook, estate). The CLI's two
# modules sit on top; every other loose module is plumbing, below everything.
CLI_MODULES = {"govops", "govops.cli", "govops.clikit"}


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_there_are_modules_to_check() -> None:
    found = modules()
    assert len(found) > 50 and ROOT / "govops" / "ansible" / "converge.py" in found


def test_no_module_is_over_500_lines_without_a_reason() -> None:
    too_long = []
    for path in modules():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        reason = docstring.partition(REASON)[2].strip()
        if len(reason) < 20:
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not too_long, (
        f"split these by responsibility, or give the reason in the module docstring "
        f"(a paragraph starting {REASON!r}): " + "; ".join(too_long)
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_every_folder_of_python_is_a_package(package: str) -> None:
    loose = [
        str(folder.relative_to(ROOT))
        for folder in (ROOT / package).rglob("*")
        if folder.is_dir()
        and any(folder.glob("*.py"))
        and not (folder / "__init__.py").is_file()
        and "__pycache__" not in folder.parts
    ]
    assert not loose, f"folders of Python modules without __init__.py: {loose}"


def test_govops_top_level_is_plumbing_and_packages() -> None:
    graph = grimp.build_graph("govops")
    loose = {m for m in graph.find_children("govops") if not graph.find_children(m)}
    plumbing = loose - CLI_MODULES
    assert {"govops.errors", "govops.paths"} <= plumbing
    misplaced = {
        module: sorted(imported)
        for module in sorted(plumbing)
        if (imported := graph.find_modules_directly_imported_by(module) - plumbing)
    }
    assert not misplaced, (
        f"{misplaced}: a loose module of govops/ that imports the packages is an engine or a "
        "helper: it belongs in a package of its own (govops/ansible, govops/pulumi, ...), a test "
        "helper under tests/"
    )
