"""Rendering: registry + estate → every tool's input, deterministic, with drift checking."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from govops.registry.estate import Estate
from govops.render.ansible import render_inventory
from govops.render.common import RENDER_MARK, Files
from govops.render.inherit import render_inherit
from govops.render.lab import render_topology
from govops.render.prometheus import render_targets
from govops.render.pulumi import render_stacks

STACKS_DIR = "infra/stacks"


def render(estate: Estate) -> Files:
    """Everything `govops render` writes for this estate, by repo-relative path."""
    base = f"inventories/{estate.environment}"
    files: Files = {}
    files |= render_inventory(estate, base)
    files |= render_targets(estate, base)
    files |= render_topology(estate, base)
    files |= render_inherit(estate, base)
    files |= render_stacks(estate, STACKS_DIR)
    return dict(sorted(files.items()))


def owned(root: Path, env: str) -> set[str]:
    """Rendered files on disk for `env`: those carrying the render header (to find stale ones).

    Hand-written files beside rendered ones (a vault, lab settings) carry no header and are
    never touched.
    """
    base = root / "inventories" / env
    found: set[Path] = set()
    for pattern in ("*.yml", "group_vars/**/*.yml", "prometheus/*.json"):
        found.update(base.glob(pattern))
    found.update((root / STACKS_DIR).glob(f"Pulumi.{env}-*.yaml"))
    result: set[str] = set()
    for path in found:
        if not path.is_file():
            continue
        if path.suffix == ".json" or path.read_text(encoding="utf-8").startswith(RENDER_MARK):
            result.add(str(path.relative_to(root)))
    return result


@dataclass(frozen=True)
class Drift:
    changed: list[str]
    added: list[str]
    stale: list[str]
    diff: str

    @property
    def clean(self) -> bool:
        return not (self.changed or self.added or self.stale)


def drift(root: Path, env: str, files: Files) -> Drift:
    changed: list[str] = []
    added: list[str] = []
    chunks: list[str] = []
    for rel, content in files.items():
        path = root / rel
        if not path.exists():
            added.append(rel)
            continue
        current = path.read_text(encoding="utf-8")
        if current != content:
            changed.append(rel)
            chunks.extend(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    content.splitlines(keepends=True),
                    fromfile=f"{rel} (committed)",
                    tofile=f"{rel} (rendered)",
                    n=1,
                )
            )
    stale = sorted(owned(root, env) - set(files))
    return Drift(changed, added, stale, "".join(chunks))


def write(root: Path, env: str, files: Files) -> Drift:
    """Write what differs, remove stale rendered files; return what changed."""
    result = drift(root, env, files)
    for rel in (*result.changed, *result.added):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel], encoding="utf-8")
    for rel in result.stale:
        (root / rel).unlink()
    return result
