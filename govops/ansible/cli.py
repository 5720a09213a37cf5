"""`govops converge`: configure an environment's hosts with the playbooks (Ansible).

Exit codes: 0 every host converged, 1 a host failed or was unreachable (or the lab is not up),
2 bad input (unknown environment, playbook or limit), 130 interrupted.
"""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path

import click
from rich.console import Console

from govops.ansible.converge import (
    DEFAULT_PLAYBOOK,
    ConvergeRequest,
    converge,
    format_recap,
    summary,
)
from govops.clikit import handle_errors
from govops.paths import repo_root

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
QUIET_TAIL_LINES = 20


@click.command(
    "converge",
    context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": True},
)
@click.option(
    "--env",
    "env",
    default="lab",
    show_default=True,
    metavar="ENV",
    help="Environment: runs against inventories/ENV (rendered by `govops render`).",
)
@click.option(
    "--limit",
    "limit",
    default=None,
    metavar="PATTERN",
    help="Ansible host pattern (hue-db, province_hue, tier_db:&province_hue). In a lab "
    "it is intersected with the running hosts.",
)
@click.option("--check", is_flag=True, help="Dry run (ansible-playbook --check): change nothing.")
@click.option("--diff", is_flag=True, help="Show file differences (ansible-playbook --diff).")
@click.option(
    "--playbook",
    "playbook",
    default=DEFAULT_PLAYBOOK,
    show_default=True,
    metavar="NAME",
    help="A playbook under playbooks/ (site.yml, rollout.yml, cutover/drain.yml, ...) or a path.",
)
@click.option(
    "--inventories",
    "inventories",
    default=None,
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=False),
    help="Inventories folder (default: the checkout's inventories/).",
)
@click.option(
    "--mitogen/--no-mitogen",
    "mitogen",
    default=None,
    help="Run through Mitogen for Ansible (a Python interpreter kept on each host; see "
    "docs/converge-speed.md). Default: on, unless the environment has GOVOPS_MITOGEN=0.",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Print only the PLAY RECAP and the summary, not Ansible's task output.",
)
@click.argument("ansible_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- ANSIBLE ARGS]")
@handle_errors
def converge_cmd(
    env: str,
    limit: str | None,
    check: bool,
    diff: bool,
    playbook: str,
    inventories: Path | None,
    mitogen: bool | None,
    quiet: bool,
    ansible_args: tuple[str, ...],
) -> None:
    """Configure ENV's hosts: ansible-playbook playbooks/PLAYBOOK with the rendered inventory.

    A lab environment is limited to the hosts `govops lab up` started
    (<cache>/lab/ENV/hosts.limit). Arguments after `--` go to ansible-playbook
    (`-- -e govops_rollout_batch=10% -v`).
    """
    request = ConvergeRequest(
        env=env,
        playbook=playbook,
        limit=limit,
        check=check,
        diff=diff,
        extra_args=tuple(a for a in ansible_args if a != "--"),
        inventories=inventories,
        mitogen=mitogen,
    )
    # Quiet keeps Ansible's last lines: an error before any play (a bad -e) is told, not lost.
    last: deque[str] = deque(maxlen=QUIET_TAIL_LINES)
    result = converge(
        repo_root(),
        request,
        echo=last.append if quiet else click.echo,
        prompt=_ask if sys.stdin.isatty() else None,
    )
    if quiet and result.recap:
        out.print("PLAY RECAP")
        for line in format_recap(result.recap):
            out.print(line)
    style = "green" if result.ok else "bold red"
    out.print(f"[{style}]{'converged' if result.ok else 'FAILED'}[/] {summary(result, env)}")
    if result.failed_hosts:
        err.print(f"[red]failed or unreachable:[/] {', '.join(result.failed_hosts)}")
    if not result.recap and result.returncode != 0:
        for line in last:
            err.print(line, markup=False, highlight=False)
        err.print(f"[red]ansible-playbook exited {result.returncode} before any recap[/]")
    if not result.ok:
        sys.exit(1)


def _ask(kind: str) -> str:
    """--ask-vault-pass and the like: asked here, handed to Ansible's prompt, never stored."""
    return str(click.prompt(f"{kind.upper()} password", hide_input=True, err=True))
