"""Files generated from code and committed (rules, dashboards): write them, or show their drift.

The generators (exporters/rules/generate.py, exporters/dashboards/generate.py) produce
{file name: text}; this module compares that with the committed files and writes what differs,
for `govops monitoring rules|dashboards [--check]` and `python -m exporters.<x>.generate`.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

Files = dict[str, str]


def drift(files: Files, directory: Path) -> list[str]:
    """Unified diffs of committed files that differ from what would be generated."""
    out: list[str] = []
    for name, text in files.items():
        path = directory / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            out.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        f"{name} (committed)",
                        f"{name} (generated)",
                    )
                )
            )
    return out


def write(files: Files, directory: Path) -> list[str]:
    """Write the files whose text differs; return their names."""
    written = []
    for name, text in files.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(name)
    return written


def main(
    prog: str,
    description: str | None,
    files: Callable[[], Files],
    directory: Path,
    argv: Iterable[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--check", action="store_true", help="exit 1 if committed files drift")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.check:
        diffs = drift(files(), directory)
        for d in diffs:
            sys.stderr.write(d)
        return 1 if diffs else 0
    for name in write(files(), directory):
        print(f"wrote {directory / name}")
    return 0
