"""Where things are: the repository root and the cache outside it."""

from __future__ import annotations

import os
from pathlib import Path

from govops.errors import GovopsError


def repo_root(start: Path | None = None) -> Path:
    """The govops checkout: `GOVOPS_ROOT`, else the nearest parent holding `inventories/`
    and `Pulumi.yaml`, else the checkout this package was installed from (editable)."""
    if env := os.environ.get("GOVOPS_ROOT"):
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "inventories").is_dir() and (candidate / "Pulumi.yaml").is_file():
            return candidate
    package_parent = Path(__file__).resolve().parent.parent
    if (package_parent / "inventories").is_dir():
        return package_parent
    raise GovopsError(
        "cannot find the govops checkout (a folder with inventories/ and Pulumi.yaml); "
        "run from inside it or set GOVOPS_ROOT"
    )


def inventory_dir(env: str) -> Path:
    """inventories/ENV: the checkout's, or GOVOPS_INVENTORY, which the runbook engine sets for
    the commands its steps run (a throwaway lab's inventory lives outside the checkout)."""
    if inventory := os.environ.get("GOVOPS_INVENTORY"):
        return Path(inventory)
    return repo_root() / "inventories" / env


def is_lab(env: str, inventory: Path) -> bool:
    """A lab environment (`lab`, or a throwaway one of the tests) has a rendered topology: its
    hosts are reached with the lab's own key and known_hosts, not the operator's SSH."""
    return env == "lab" or (inventory / "topology.yml").is_file()


def cache_dir() -> Path:
    """Built things (lab image, keys, state) live here, never in the repo."""
    base = os.environ.get("GOVOPS_CACHE") or str(Path.home() / ".cache" / "govops")
    return Path(base)
