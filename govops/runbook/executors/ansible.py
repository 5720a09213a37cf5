"""`ansible`: `ansible-playbook -i <inventory> <playbook> --limit <province group>`.

Run from the checkout (its ansible.cfg applies), output to a log file per call. In check
mode (`govops cutover run --dry-run --check`) the playbook runs with `--check --diff`. The
environment is `govops converge`'s (ENV's fact cache, Mitogen under GOVOPS_MITOGEN=1), but not
its ansible-runner: runner's pexpect starts ansible-playbook in a session of its own, outside
the process group the engine records before the step acts and kills at its timeout (exactly
once: process.py), so the recap is read from Ansible's PLAY RECAP.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from pydantic import Field

from govops.paths import cache_dir
from govops.playbook_env import ansible_environment
from govops.runbook.executors.base import Args, ExecContext, Executor, ExecutorError, Outcome
from govops.runbook.executors.process import run_logged


class AnsibleArgs(Args):
    playbook: str = Field(min_length=1)
    limit: str | None = None  # default: the province's group, province_<codename>
    extra_vars: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)


def ansible_playbook() -> str:
    """The ansible-playbook of this virtualenv first: the one the project pins."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.is_file():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise ExecutorError("ansible-playbook not found (install the project: make venv)")
    return found


def command(args: AnsibleArgs, ctx: ExecContext) -> list[str]:
    extra = {
        **args.extra_vars,
        "govops_run_id": ctx.run_id,
        "govops_idempotency_key": ctx.idempotency_key,
        "govops_cutover_province": ctx.province,
    }
    argv = [
        ansible_playbook(),
        "-i",
        str(ctx.settings.inventory),
        args.playbook,
        "--limit",
        args.limit or f"province_{ctx.province}",
        "-e",
        json.dumps(extra, ensure_ascii=False),
    ]
    if args.tags:
        argv += ["--tags", ",".join(args.tags)]
    if ctx.check_mode:
        argv += ["--check", "--diff"]
    return argv


class AnsibleExecutor(Executor):
    name = "ansible"
    Args = AnsibleArgs

    def run(self, args: Any, ctx: ExecContext) -> Outcome:
        assert isinstance(args, AnsibleArgs)
        playbook = ctx.settings.root / args.playbook
        if not playbook.is_file():
            raise ExecutorError(f"playbook {args.playbook} does not exist in {ctx.settings.root}")
        # The same environment as `govops converge`: ENV's fact cache, Mitogen unless
        # GOVOPS_MITOGEN=0.
        env = ansible_environment(
            os.environ,
            root=ctx.settings.root,
            env_name=ctx.settings.env,
            cache_root=cache_dir(),
        )
        env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"})
        done = run_logged(command(args, ctx), ctx, cwd=ctx.settings.root, env=env)
        recap = _recap(done.output)
        data = {"log": str(done.log), "rc": done.returncode, "recap": recap}
        if done.returncode == 0:
            return Outcome(True, recap, data)
        return Outcome(
            False, f"ansible-playbook exited {done.returncode}: {recap} (log {done.log})", data
        )

    def describe(self, args: Any) -> str:
        assert isinstance(args, AnsibleArgs)
        return f"ansible-playbook {args.playbook} --limit {args.limit or 'province_<province>'}"


def _recap(output: str) -> str:
    """The PLAY RECAP lines, squeezed: `host ok=3 changed=1 failed=0 …`."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("PLAY RECAP"):
            hosts = [" ".join(x.split()) for x in lines[i + 1 :] if x.strip()]
            return "; ".join(hosts)[:1000]
    return " ".join(output.strip().splitlines()[-3:])[:1000]
