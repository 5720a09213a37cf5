"""`govops converge`: run the playbooks against an environment's rendered inventory.

The same `ansible-playbook` run an operator would type by hand, run through ansible-runner
(govops/ansible/playbook.py), with three additions:

- a lab environment (one whose inventory has a rendered `topology.yml`) is limited to the
  hosts the lab has running, from `<cache>/lab/<env>/hosts.limit` (written by `govops lab`);
  a `--limit` pattern is intersected with them;
- per-host counts (Ansible's stats), per-task time and the tasks that changed come from
  ansible-runner's events, so callers (the CLI, tests, benchmarks) can tell "changed nothing"
  from "changed something" without reading Ansible's output;
- Ansible's failures become one exit code (1), bad input another (2), an interrupted run 130.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from govops.ansible.playbook import HostRecap, asked_passwords, run_playbook
from govops.errors import GovopsError
from govops.lab.paths import LabPaths
from govops.playbook_env import ansible_environment

__all__ = ["HostRecap"]  # part of ConvergeResult's interface; it lives with the runner

PLAYBOOKS_DIR = "playbooks"
DEFAULT_PLAYBOOK = "site.yml"
ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
# What to pass instead of --ask-*-pass where nobody can answer a prompt.
PASSWORD_FILES = {
    "vault": "--vault-password-file",
    "become": "--become-password-file",
    "ssh": "--connection-password-file",
}


class ConvergeInputError(GovopsError):
    """An unknown environment, playbook or limit (exit code 2)."""

    exit_code = 2


class LabNotUp(GovopsError):
    """A lab environment with no running hosts recorded (exit code 1)."""


class AnsibleFailed(GovopsError):
    """ansible-playbook reported failed or unreachable hosts, or did not run (exit code 1)."""


class ConvergeInterrupted(GovopsError):
    """Ctrl-C or SIGTERM: ansible-playbook was stopped (exit code 130, as a shell says)."""

    exit_code = 130


@dataclass(frozen=True)
class ConvergeRequest:
    """What to run: environment, playbook, limit, check mode, extra ansible-playbook args."""

    env: str
    playbook: str = DEFAULT_PLAYBOOK
    limit: str | None = None
    check: bool = False
    diff: bool = False
    extra_args: tuple[str, ...] = ()
    inventories: Path | None = None
    # Mitogen's connection layer (one Python interpreter kept per host); None: GOVOPS_MITOGEN.
    mitogen: bool | None = None


@dataclass
class ConvergeResult:
    """What happened: the command, Ansible's exit code, the recap, the time taken."""

    command: list[str]
    returncode: int
    recap: dict[str, HostRecap] = field(default_factory=dict)
    seconds: float = 0.0
    limited_to: list[str] | None = None
    # Seconds per task ("role : task") summed over hosts, and each host's changed tasks.
    task_seconds: dict[str, float] = field(default_factory=dict)
    changes: dict[str, list[str]] = field(default_factory=dict)
    # Wall-clock seconds per task (see PlaybookRun.task_wall).
    task_wall: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not any(
            r.failed or r.unreachable for r in self.recap.values()
        )

    @property
    def changed_hosts(self) -> list[str]:
        return sorted(h for h, r in self.recap.items() if r.changed)

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, r in self.recap.items() if r.failed or r.unreachable)

    def totals(self) -> dict[str, int]:
        keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
        return {k: sum(getattr(r, k) for r in self.recap.values()) for k in keys}


def is_lab_env(inventory: Path) -> bool:
    """A lab environment's inventory carries the lab topology `govops render` writes."""
    return (inventory / "topology.yml").is_file()


def read_limit_file(path: Path) -> list[str]:
    """Host names, one a line (blank lines and `#` comments ignored)."""
    hosts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            hosts.append(name)
    return hosts


def ansible_bin(name: str) -> str:
    """An Ansible executable from this interpreter's environment, else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise AnsibleFailed(f"{name} is not installed (make venv)")
    return found


def resolve_pattern(inventory: Path, pattern: str, env: Mapping[str, str]) -> list[str]:
    """Host names an Ansible host pattern selects in the inventory (`ansible --list-hosts`)."""
    proc = subprocess.run(
        [ansible_bin("ansible"), "-i", str(inventory), pattern, "--list-hosts"],
        capture_output=True,
        text=True,
        env=dict(env),
        check=False,
    )
    if proc.returncode != 0:
        raise ConvergeInputError(f"--limit {pattern!r}: {proc.stderr.strip() or proc.stdout}")
    lines = [line.strip() for line in proc.stdout.splitlines()]
    return [line for line in lines if line and not line.startswith("hosts (")]


class Converge:
    """Builds and runs one ansible-playbook invocation for a request."""

    def __init__(
        self,
        root: Path,
        request: ConvergeRequest,
        *,
        lab_paths: LabPaths | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not ENV_NAME.match(request.env):
            raise ConvergeInputError(f"--env {request.env!r}: expected a name like lab, production")
        self.root = root
        self.request = request
        self.lab_paths = lab_paths or LabPaths.default()
        self.environ = dict(os.environ if environ is None else environ)
        inventories = request.inventories or root / "inventories"
        self.inventory = inventories / request.env
        if not (self.inventory / "hosts.yml").is_file():
            raise ConvergeInputError(
                f"{self.inventory}/hosts.yml: missing; run `govops render --env {request.env}`"
            )
        self.playbook = self._playbook_path(request.playbook)

    def _playbook_path(self, name: str) -> Path:
        candidate = Path(name)
        if not candidate.is_absolute():
            candidate = self.root / PLAYBOOKS_DIR / name
        if not candidate.is_file():
            known = sorted(p.name for p in (self.root / PLAYBOOKS_DIR).glob("*.yml"))
            raise ConvergeInputError(
                f"--playbook {name!r}: no such playbook; known: {', '.join(known)}"
            )
        return candidate

    def env(self) -> dict[str, str]:
        return ansible_environment(
            self.environ,
            root=self.root,
            env_name=self.request.env,
            cache_root=self.lab_paths.root.parent,
            mitogen=self.request.mitogen,
        )

    def lab_limit(self) -> tuple[str, list[str]] | None:
        """For a lab environment: the --limit value and the hosts it selects."""
        if not is_lab_env(self.inventory):
            return None
        limit_file = self.lab_paths.hosts_limit(self.request.env)
        running = read_limit_file(limit_file) if limit_file.is_file() else []
        if not running:
            raise LabNotUp(
                f"the {self.request.env} lab is not up ({limit_file} is missing or empty): "
                f"run `govops lab up --env {self.request.env}` first"
            )
        if self.request.limit is None:
            return f"@{limit_file}", running
        wanted = set(resolve_pattern(self.inventory, self.request.limit, self.env()))
        selected = [h for h in running if h in wanted]
        if not selected:
            raise ConvergeInputError(
                f"--limit {self.request.limit!r} selects no host the {self.request.env} lab "
                f"has running ({len(running)} running, listed in {limit_file})"
            )
        combined = limit_file.with_name("converge.limit")
        combined.write_text("".join(f"{h}\n" for h in selected), encoding="utf-8")
        return f"@{combined}", selected

    def command(self, limit: str | None) -> list[str]:
        argv = [ansible_bin("ansible-playbook"), "-i", str(self.inventory), str(self.playbook)]
        if limit is not None:
            argv += ["--limit", limit]
        if self.request.check:
            argv.append("--check")
        if self.request.diff:
            argv.append("--diff")
        return argv + list(self.request.extra_args)

    def run(
        self,
        echo: Callable[[str], None] | None = None,
        prompt: Callable[[str], str] | None = None,
    ) -> ConvergeResult:
        """Run ansible-playbook from the repository root, streaming its output to `echo`.

        `prompt(kind)` answers --ask-vault-pass (kind "vault"), --ask-become-pass ("become")
        and --ask-pass ("ssh") before the run starts; without it those flags are refused.
        """
        lab = self.lab_limit()
        limit = lab[0] if lab else self.request.limit
        argv = self.command(limit)
        env = self.env()
        # ansible-runner gives Ansible a pseudo-terminal, which Ansible would colour for:
        # colour only when ours is a terminal too, as a plain ansible-playbook would.
        if echo is not None and sys.stdout.isatty():
            env.setdefault("ANSIBLE_FORCE_COLOR", "1")
        else:
            env.setdefault("ANSIBLE_NOCOLOR", "1")
        asked = asked_passwords(self.request.extra_args)
        if asked and prompt is None:
            kind = asked[0]
            raise ConvergeInputError(
                f"the {kind} password cannot be asked for here (no terminal): "
                f"pass `-- {PASSWORD_FILES[kind]} FILE` instead"
            )
        passwords = {kind: prompt(kind) for kind in asked} if prompt is not None else {}
        done = run_playbook(argv, cwd=self.root, env=env, echo=echo, passwords=passwords)
        if done.status == "canceled":
            raise ConvergeInterrupted(f"interrupted: {Path(argv[0]).name} stopped")
        return ConvergeResult(
            command=argv,
            returncode=done.returncode,
            recap=done.recap,
            seconds=done.seconds,
            limited_to=lab[1] if lab else None,
            task_seconds=done.task_seconds,
            changes=done.changes,
            task_wall=done.task_wall,
        )


def converge(
    root: Path,
    request: ConvergeRequest,
    *,
    echo: Callable[[str], None] | None = None,
    lab_paths: LabPaths | None = None,
    environ: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> ConvergeResult:
    """Run the request; the result says what changed (see ConvergeResult.ok)."""
    return Converge(root, request, lab_paths=lab_paths, environ=environ).run(echo, prompt)


def summary(result: ConvergeResult, env: str) -> str:
    """One line: hosts, what changed, what failed, how long."""
    totals = result.totals()
    hosts = len(result.recap)
    changed = result.changed_hosts
    parts = [
        f"{env}: {hosts} hosts",
        f"changed={totals['changed']} on {len(changed)} host{'s' if len(changed) != 1 else ''}",
        f"failed={totals['failed']}",
        f"unreachable={totals['unreachable']}",
        f"{result.seconds:.1f} s",
    ]
    return ", ".join(parts)


def format_recap(recap: Mapping[str, HostRecap]) -> list[str]:
    """The recap as aligned lines (for callers that did not stream Ansible's output)."""
    width = max((len(h) for h in recap), default=0)
    return [
        f"{r.host:<{width}} : ok={r.ok:<4} changed={r.changed:<4} unreachable={r.unreachable:<4}"
        f" failed={r.failed:<4} skipped={r.skipped:<4} rescued={r.rescued:<4}"
        f" ignored={r.ignored}"
        for r in sorted(recap.values(), key=lambda r: r.host)
    ]
