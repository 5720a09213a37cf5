"""ansible-playbook's environment, the same wherever the suite runs it: `govops converge`
(govops.ansible), the runbooks' Ansible steps (govops.runbook's executor) and the Molecule
scenarios. Plumbing, so that the engines and the cutover share it without importing each
other."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from pathlib import Path

from govops.errors import GovopsError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def mitogen_strategy_dir() -> str:
    """Mitogen for Ansible's strategy plugins (mitogen_linear keeps each task's order)."""
    try:
        import ansible_mitogen
    except ImportError:
        raise GovopsError("mitogen is not installed (make venv)") from None
    return str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy")


def mitogen_requested(environ: Mapping[str, str]) -> bool:
    """Converges, the runbooks' Ansible steps and the Molecule scenarios go through Mitogen
    unless GOVOPS_MITOGEN=0 (the default since every scenario and the lab proofs pass with it,
    issue 19; half the steady state's time). A word it does not know is refused, not guessed."""
    word = environ.get("GOVOPS_MITOGEN", "").strip().lower()
    if not word or word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise GovopsError(
        f"environment variable GOVOPS_MITOGEN={word!r}: expected one of "
        f"{', '.join(sorted(TRUE_WORDS))} (through Mitogen, the default) "
        f"or {', '.join(sorted(FALSE_WORDS))} (Ansible's own strategy)"
    )


def use_mitogen(env: MutableMapping[str, str]) -> None:
    """Point ansible-playbook's environment at Mitogen's strategy (measured in
    bench/converge.py, issue 19: no new SSH session and interpreter per task on each host)."""
    env["ANSIBLE_STRATEGY_PLUGINS"] = mitogen_strategy_dir()
    env["ANSIBLE_STRATEGY"] = "mitogen_linear"


def ansible_environment(
    environ: Mapping[str, str],
    *,
    root: Path,
    env_name: str,
    cache_root: Path,
    mitogen: bool | None = None,
) -> dict[str, str]:
    """ansible-playbook's environment for ENV, the same for `govops converge` and the runbooks'
    Ansible steps: roles beside the playbooks, ENV's own fact cache, Mitogen when asked
    (`mitogen`, else GOVOPS_MITOGEN)."""
    env = dict(environ)
    # Roles live beside the playbooks' folder; say so even when ANSIBLE_CONFIG points at
    # another configuration (the benchmark's "Ansible defaults" run).
    env.setdefault("ANSIBLE_ROLES_PATH", str(root / "roles"))
    # Facts are cached per cache dir and environment: `make lab` and a test lab share host
    # names (hue-db, monitor), never facts (smart gathering would trust the other's).
    env.setdefault("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(cache_root / "ansible-facts" / env_name))
    env.setdefault("PYTHONUNBUFFERED", "1")
    if mitogen if mitogen is not None else mitogen_requested(env):
        use_mitogen(env)
    return env
