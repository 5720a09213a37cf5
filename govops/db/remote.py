"""The one way `govops db` reaches hosts: SSH with host keys checked, as the runbooks do.

In a lab (`lab`, or a throwaway one: an inventory with a rendered topology), the lab's own
connections (govops/lab/fabric.py: its key, its known_hosts, the running containers'
addresses). Elsewhere, as the runbook's fabric executor: the inventory's
address for each name (inventories/ENV/hosts.yml), the operator's SSH (~/.ssh/config — ProxyJump
through the bastion — keys or agent, ~/.ssh/known_hosts), host keys always checked
(RejectPolicy). Every failure names the host, the command (redacted) and its
exit code; commands run privileged parts through `sudo -n`, so a non-root login works too.

`Runner` is the interface the restore and the drill use; tests give them a fake.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from govops.errors import GovopsError
from govops.redact import redact_text

DB_ROLE_FILE = "/etc/govops/db-role"


class RemoteError(GovopsError):
    """A command on a host failed (or the host could not be reached)."""


@dataclass(frozen=True)
class Result:
    host: str
    command: str
    exited: int
    stdout: str
    stderr: str


class Runner(Protocol):
    def run(self, host: str, command: str, *, timeout: float | None = None) -> Result:
        """Run `command` on `host`; a non-zero exit is returned, not raised."""
        ...


def check(result: Result, what: str = "") -> Result:
    """The result if the command exited 0, else a RemoteError naming host, command and code."""
    if result.exited == 0:
        return result
    raise RemoteError(failure(result, what))


def failure(result: Result, what: str = "") -> str:
    excerpt = "\n".join((result.stderr or result.stdout).strip().splitlines()[-4:])[-600:]
    head = command_head(result.command)
    prefix = f"{what}: " if what else ""
    said = f": {excerpt}" if excerpt else ""
    return redact_text(f"{prefix}{result.host}: `{head}` exited {result.exited}{said}")


def command_head(command: str) -> str:
    """The command as shown in a message: its first line (a heredoc's script stays out), cut."""
    lines = command.strip().splitlines() or [""]
    head = lines[0] + (" …" if len(lines) > 1 else "")
    return head if len(head) <= 200 else head[:197] + "..."


def q(*argv: str) -> str:
    return shlex.join(argv)


class SshRunner:
    """Fabric connections, one per host, opened on first use and closed by close()."""

    def __init__(self, env: str, ssh_user: str = "root") -> None:
        self.env = env
        self.ssh_user = ssh_user
        self._conns: dict[str, Any] = {}
        self._addresses: dict[str, str] | None = None

    def _connection(self, host: str) -> Any:
        if host in self._conns:
            return self._conns[host]
        from govops.paths import inventory_dir, is_lab

        if is_lab(self.env, inventory_dir(self.env)):
            from govops.lab.fabric import lab_group

            conn = next(iter(lab_group(self.env, [host])))
        else:
            conn = _operator_connection(host, self.ssh_user, self._address(host))
        self._conns[host] = conn
        return conn

    def _address(self, host: str) -> str | None:
        """The inventory's address for `host` (inventories/ENV/hosts.yml), as the runbooks'
        `resolve: inventory`; None: the name as it is (DNS, ~/.ssh/config)."""
        from govops.paths import inventory_dir
        from govops.runbook.context import inventory_addresses

        if self._addresses is None:
            self._addresses = inventory_addresses(inventory_dir(self.env))
        return self._addresses.get(host)

    def run(self, host: str, command: str, *, timeout: float | None = None) -> Result:
        try:
            conn = self._connection(host)
            seconds = int(timeout) if timeout else None
            done = conn.run(command, hide=True, warn=True, in_stream=False, timeout=seconds)
        except GovopsError:
            raise
        except Exception as exc:  # paramiko/socket/invoke: unreachable, refused, timed out
            raise RemoteError(
                redact_text(f"{host}: `{command_head(command)}` could not run: {_reason(exc)}")
            ) from None
        return Result(host, command, int(done.exited), done.stdout, done.stderr)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def _operator_connection(host: str, user: str, address: str | None) -> Any:
    """The operator's SSH as the runbook's fabric executor: ~/.ssh/config (ProxyJump through
    the bastion, keys), the inventory's address for the name, host keys checked."""
    import paramiko
    from fabric import Config, Connection

    config = Config(overrides={"run": {"in_stream": False}})
    if address:
        own = Path.home() / ".ssh" / "config"
        text = f"Host {host}\n  HostName {address}\n"
        if own.is_file():
            text += own.read_text(encoding="utf-8", errors="replace")
        config = Config(
            ssh_config=paramiko.SSHConfig.from_text(text),
            overrides={"run": {"in_stream": False}},
        )
    conn = Connection(host, user=user, config=config, connect_timeout=15)
    known = Path.home() / ".ssh" / "known_hosts"
    if known.is_file():
        conn.client.get_host_keys().load(str(known))
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "not found in known_hosts" in text:
        return f"host key not known (host key checking is on): {text}"
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return f"timed out: {text}"
    return text


def db_role(runner: Runner, host: str) -> dict[str, Any] | None:
    """The host's /etc/govops/db-role ({"role", "epoch", "since"}), None when not written yet
    or the host cannot be reached (a lost primary is exactly when this is asked)."""
    try:
        result = runner.run(host, f"cat {DB_ROLE_FILE} 2>/dev/null || true", timeout=20)
    except GovopsError:  # unreachable, or (the lab) not running
        return None
    text = result.stdout.strip()
    if result.exited != 0 or not text:
        return None
    try:
        data = json.loads(text.splitlines()[-1])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def find_primary(
    runner: Runner, declared: str, standby: str, note: Callable[[str], None] = lambda m: None
) -> str:
    """The current primary: the db host whose db-role says primary with the highest epoch;
    none written yet → the declared primary (the contract of playbooks/tasks/db_primary.yml)."""
    roles = {h: db_role(runner, h) for h in (declared, standby)}
    primaries = [
        (int(r.get("epoch", 0)) if isinstance(r.get("epoch", 0), int) else 0, h)
        for h, r in roles.items()
        if r is not None and r.get("role") == "primary"
    ]
    if not primaries:
        note(f"no {DB_ROLE_FILE} says primary: using the declared primary {declared}")
        return declared
    return max(primaries)[1]
