"""The lab's SSH client key and the known_hosts file that pins every host's own key."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from govops.lab.paths import LabPaths, file_lock


@dataclass(frozen=True)
class HostKeys:
    """A host's public host keys, as read from inside the container (a trusted channel)."""

    name: str
    ip: str
    keys: tuple[str, ...]  # "ssh-ed25519 AAAA..." without comment

    def known_hosts_lines(self) -> list[str]:
        # One line for both the name and the IP: ssh may be pointed at either.
        return [f"{self.name},{self.ip} {key}" for key in self.keys]


def ensure_keypair(paths: LabPaths) -> None:
    """Generate the lab's ed25519 key once; every lab host trusts it for root."""
    if paths.private_key.is_file() and paths.public_key.is_file():
        return
    paths.ssh_dir.mkdir(parents=True, exist_ok=True)
    paths.ssh_dir.chmod(0o700)
    paths.private_key.unlink(missing_ok=True)
    paths.public_key.unlink(missing_ok=True)
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "govops-lab",
            "-f",
            str(paths.private_key),
        ],
        check=True,
        capture_output=True,
    )


def parse_public_keys(text: str) -> tuple[str, ...]:
    """`type base64 [comment]` lines -> ('type base64', ...), comments dropped, order kept."""
    keys: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].startswith(("ssh-", "ecdsa-")):
            keys.append(f"{fields[0]} {fields[1]}")
    return tuple(keys)


def _mentions(line: str, names: set[str]) -> bool:
    fields = line.split(maxsplit=1)
    return bool(fields) and any(h in names for h in fields[0].split(","))


def merge_known_hosts(
    current: Sequence[str], add: Iterable[HostKeys], remove: Iterable[str] = ()
) -> list[str]:
    """Lines of known_hosts after replacing the entries of `add` and dropping `remove` names/IPs.

    A recreated container has a new host key: its old line must go, or ssh would refuse it.
    """
    add = list(add)
    stale = set(remove) | {h.name for h in add} | {h.ip for h in add}
    kept = [line for line in current if line.strip() and not _mentions(line, stale)]
    return kept + [line for host in add for line in host.known_hosts_lines()]


def update_known_hosts(
    paths: LabPaths, add: Iterable[HostKeys], remove: Iterable[str] = ()
) -> None:
    with file_lock(paths.ssh_dir / ".known_hosts.lock"):
        path = paths.known_hosts
        current = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        lines = merge_known_hosts(current, add, remove)
        if lines == current:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        tmp.replace(path)


def known_names(paths: LabPaths) -> set[str]:
    """Every host name or IP that has a line in known_hosts."""
    if not paths.known_hosts.is_file():
        return set()
    names: set[str] = set()
    for line in paths.known_hosts.read_text(encoding="utf-8").splitlines():
        fields = line.split(maxsplit=1)
        if fields:
            names.update(fields[0].split(","))
    return names


def ssh_options(paths: LabPaths) -> Mapping[str, str]:
    """The OpenSSH options the rendered inventory also uses (strict host key checking on)."""
    return {
        "UserKnownHostsFile": str(paths.known_hosts),
        "StrictHostKeyChecking": "yes",
        "IdentitiesOnly": "yes",
        "IdentityFile": str(paths.private_key),
    }
