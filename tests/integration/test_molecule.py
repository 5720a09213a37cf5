"""Every role's Molecule scenario, as CI runs it: the sequence `molecule test` would run.

`molecule test` in the role's folder runs the scenario's declared `test_sequence` (destroy, syntax,
create, prepare, converge, idempotence: a second converge must change nothing, check mode, verify,
destroy), one `molecule <action>` at a time, with `molecule destroy` after a failure as `molecule
test` does, because Mitogen (the default, as for every converge; GOVOPS_MITOGEN=0 runs plain
`molecule test` with Ansible's own strategy) can carry the scenario's own playbooks but not the
podman driver's create and destroy: those start the containers with async tasks on localhost, which
Mitogen's local connection cannot wait on (it also wants sudo for `become`). Its speed exposed
reload races, mended in the roles (Alertmanager's SIGHUP, nginx's reload; see
docs/converge-speed.md). Each run is isolated from the others and from a running `make lab`:

- its container and network names carry a unique GOVOPS_MOLECULE_SUFFIX (the scenarios find
  their hosts by group, never by name);
- its ephemeral directory (inventory, state, the scenario's lab PKI) and GOVOPS_CACHE (the
  controller's packed stand-in archive) are under the test's temporary directory;
- podman reads the lab's containers.conf (runc, cgroupfs, ulimits: see FIELD-NOTES) and the
  scenarios use the current lab image, built once if missing.

Run one role: `.venv/bin/pytest tests/integration/test_molecule.py -k common`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from govops.lab.image import ensure_image
from govops.lab.paths import LabPaths
from govops.lab.podman import Podman, write_containers_conf
from govops.playbook_env import mitogen_requested, use_mitogen

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCENARIOS = sorted(p.parents[2].name for p in REPO.glob("roles/*/molecule/default/molecule.yml"))
# GOVOPS_MOLECULE_ROLES="common postgresql" narrows the run (`make test` names the roles whose
# scenarios fit CI's time budget; `make molecule` runs them all).
ROLES = [r for r in SCENARIOS if r in os.environ.get("GOVOPS_MOLECULE_ROLES", r).split()]
# A scenario that hangs (a container that never boots, a retry loop) must not eat the suite.
TIMEOUT_SECONDS = 900
TAIL_LINES = 80
# The podman driver's own playbooks (module docstring: not through Mitogen). `molecule create`
# on its own also runs the scenario's prepare, so prepare never goes through Mitogen either.
DRIVER_ACTIONS = frozenset({"create", "destroy", "syntax", "dependency", "cleanup"})
# `molecule check` on its own destroys and recreates the instances around the check; in
# `molecule test` the action is only the converge playbook in check mode.
COMMANDS = {"check": ("converge", "--", "--check")}


@pytest.fixture(scope="module")
def lab_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The current lab image (built once if missing) and a containers.conf podman can use."""
    conf = write_containers_conf(tmp_path_factory.mktemp("podman") / "containers.conf")
    ref, _ = ensure_image(Podman(conf), LabPaths.default())
    return ref, conf


def molecule_env(role: str, tmp_path: Path, image: str, conf: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "GOVOPS_LAB_IMAGE": image,
            "GOVOPS_MOLECULE_SUFFIX": f"-{uuid.uuid4().hex[:6]}",
            "GOVOPS_CACHE": str(tmp_path / "cache"),
            "CONTAINERS_CONF": str(conf),
            "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "molecule"),
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "PY_COLORS": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # The repository's ansible.cfg is for the estate; Molecule writes its own for the scenario.
    env.pop("ANSIBLE_CONFIG", None)
    # Through Mitogen unless GOVOPS_MITOGEN=0, as every converge (govops.playbook_env): CI's
    # Molecule took 62 min with Ansible's strategy, 30 with it (docs/converge-speed.md).
    return env


def sequence(role: str) -> list[str]:
    """The actions `molecule test` runs for ROLE's scenario, as its molecule.yml declares them."""
    path = REPO / "roles" / role / "molecule" / "default" / "molecule.yml"
    declared = yaml.safe_load(path.read_text(encoding="utf-8")).get("scenario", {})
    actions = declared.get("test_sequence")
    assert actions, f"{path}: scenario.test_sequence is missing; expected the list of actions"
    return [str(a) for a in actions]


def action_env(action: str, env: dict[str, str]) -> dict[str, str]:
    """ENV for one action: the scenario's own playbooks go through Mitogen (podman connections
    become mitogen_podman) under GOVOPS_MITOGEN=1; the driver's actions never do."""
    if action in DRIVER_ACTIONS or not mitogen_requested(env):
        return env
    through = dict(env)
    use_mitogen(through)
    return through


def leftovers(podman: Podman, suffix: str) -> list[str]:
    """Containers and networks of this run still present after `molecule test`."""
    found = []
    for args, fmt in ((("ps", "-a"), "{{.Names}}"), (("network", "ls"), "{{.Name}}")):
        out = podman.run(*args, "--format", fmt, check=False).stdout.split()
        found += [name for name in out if name.endswith(suffix)]
    return found


def molecule(action: str, role: str, env: dict[str, str], deadline: float) -> tuple[str, int]:
    """`molecule ACTION` in ROLE's folder: its output and exit code (-1 past DEADLINE)."""
    try:
        proc = subprocess.run(
            [str(BIN / "molecule"), *COMMANDS.get(action, (action,))],
            cwd=REPO / "roles" / role,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=max(1.0, deadline - time.monotonic()),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or ""
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        return text + f"\n(timed out: the scenario's {TIMEOUT_SECONDS} s are spent)\n", -1
    return proc.stdout, proc.returncode


@pytest.mark.parametrize("role", ROLES)
def test_molecule_scenario_passes(role: str, tmp_path: Path, lab_image: tuple[str, Path]) -> None:
    image, conf = lab_image
    env = molecule_env(role, tmp_path, image, conf)
    started = time.monotonic()
    deadline = started + TIMEOUT_SECONDS
    output, returncode, failed = "", 0, ""
    for action in sequence(role) if mitogen_requested(env) else ["test"]:
        text, returncode = molecule(action, role, action_env(action, env), deadline)
        output += text
        if returncode != 0:
            failed = action
            # As `molecule test` does: leave nothing behind after a failed action (after a
            # failed `molecule test` this finds nothing left).
            output += molecule("destroy", role, env, time.monotonic() + TIMEOUT_SECONDS)[0]
            break
    seconds = time.monotonic() - started
    (tmp_path / "molecule.log").write_text(output, encoding="utf-8")
    tail = "\n".join(output.splitlines()[-TAIL_LINES:])
    print(f"molecule test {role}: exit {returncode} in {seconds:.0f} s")
    assert returncode == 0, (
        f"`molecule {failed}` of role {role} exited {returncode} after {seconds:.0f} s "
        f"(full log: {tmp_path / 'molecule.log'}); last {TAIL_LINES} lines:\n{tail}"
    )
    left = leftovers(Podman(conf), env["GOVOPS_MOLECULE_SUFFIX"])
    assert not left, f"`molecule test` of role {role} left containers or networks behind: {left}"
