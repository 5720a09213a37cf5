"""Where the lab keeps its files: the repository's inventories and the per-user cache."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from govops.paths import cache_dir, repo_root


def inventories_dir(override: Path | None = None) -> Path:
    """`--inventories DIR` if given, else the checkout's inventories/."""
    return override if override is not None else repo_root() / "inventories"


@dataclass(frozen=True)
class LabPaths:
    """Every cache path the lab reads or writes, derived from one root."""

    root: Path

    @classmethod
    def default(cls) -> LabPaths:
        return cls(cache_dir() / "lab")

    def dns_state_dir(self, environment: str) -> Path:
        """`govops dns`'s record of a lab's switch (the old records it changed, where it got to):
        it describes the lab's own DNS server, so it goes with the lab (`lab down`)."""
        return self.root.parent / "dns" / environment

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def private_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def public_key(self) -> Path:
        return self.ssh_dir / "id_ed25519.pub"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def containers_conf(self) -> Path:
        return self.root / "containers.conf"

    @property
    def image_dir(self) -> Path:
        return self.root / "image"

    def env_dir(self, environment: str) -> Path:
        return self.root / environment

    def running_json(self, environment: str) -> Path:
        return self.env_dir(environment) / "running.json"

    def hosts_limit(self, environment: str) -> Path:
        return self.env_dir(environment) / "hosts.limit"

    def pgpass(self, environment: str) -> Path:
        """The passwords `govops inherit` reaches the environment's databases with (written by
        playbooks/legacy.yml; gone with `govops lab down`, not left in the operator's home)."""
        return self.env_dir(environment) / "pgpass"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held for the `with` block (released if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
