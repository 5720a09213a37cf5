"""Lab proof of the cutover engine: runbooks/rehearsal.yml on the default lab (tuyen_quang, hue,
ho_chi_minh). Mid-wave, Huế's procedures stand-in is stopped: Huế fails at its next
procedures step and rolls back (the rollbacks of what it started, in reverse), Tuyên Quang and
Hồ Chí Minh City finish; the report counts the readiness checks of the two.

Needs the lab (podman, root, the lab image) and what the other parts of the suite provide:
playbooks/site.yml with the stand-ins' role, monitoring on `monitor`, and the cutover playbooks
(playbooks/cutover/*.yml) the rehearsal calls. Until those exist the test is skipped and says
which is missing. The loopback twin of this test (test_runbook_waves_http.py) always runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from govops.runbook import runs
from govops.runbook.context import load_environment
from govops.runbook.loader import load_runbook
from govops.runbook.report import render_report
from govops.runbook.state import Store, open_store

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SITE = REPO / "playbooks" / "site.yml"
REHEARSAL = REPO / "runbooks" / "rehearsal.yml"
VICTIM = "hue"


def _missing() -> str | None:
    if not SITE.exists():
        return "playbooks/site.yml does not exist yet"
    if not any((REPO / "roles" / "govops_system" / "tasks").glob("*.yml")):
        return "roles/govops_system (the stand-ins' role) has no tasks yet"
    result = load_runbook(REHEARSAL, REPO)
    if result.warnings:
        return "; ".join(w.split(": ", 2)[-1] for w in result.warnings)
    return None


pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(_missing() is not None, reason=f"cutover rehearsal: {_missing()}"),
]


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    from govops.lab.paths import LabPaths
    from govops.lab.podman import write_containers_conf

    env = {
        **os.environ,
        "CONTAINERS_CONF": str(write_containers_conf(LabPaths.default().containers_conf)),
    }
    return subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=60)


def standin_unit(container: str) -> str:
    """The systemd unit of the stand-in on a lab host (named by the stand-ins' role)."""
    out = podman(
        "exec",
        container,
        "systemctl",
        "list-units",
        "--plain",
        "--no-legend",
        "--type=service",
        "govops-standin*",
    )
    units = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    assert units, f"no govops-standin unit on {container}: {out.stdout}{out.stderr}"
    return units[0]


@pytest.fixture(scope="module")
def converged_lab() -> Iterator[list[str]]:
    topology = yaml.safe_load((REPO / "inventories/lab/topology.yml").read_text(encoding="utf-8"))
    provinces = list(topology["default_provinces"])
    assert (
        subprocess.run([str(BIN / "govops"), "lab", "up", "--env", "lab"], cwd=REPO).returncode == 0
    )
    limit = ":".join([*(f"province_{p}" for p in provinces), "national", "monitoring"])
    converge = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "inventories/lab", str(SITE), "--limit", limit],
        cwd=REPO,
    )
    assert converge.returncode == 0, "converge failed"
    yield provinces


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(str(tmp_path / "state.sqlite3")) as opened:
        yield opened


def test_rehearsal_survives_one_province_going_down(converged_lab: list[str], store: Store) -> None:
    environment = load_environment("lab", REPO)
    loaded = load_runbook(REHEARSAL, REPO)
    run = runs.create_run(store, loaded, environment, actor="lab-proof")
    assert run.provinces == ["tuyen_quang", "hue", "ho_chi_minh"]
    for _, step in loaded.runbook.steps():  # the rehearsal's decisions, given up front
        if "manual" in (step.action.executor, step.verify.executor):
            runs.approve(store, run.id, step.id, "lab-proof", note="rehearsal")
    engine = runs.engine_for(store, run, environment, actor="lab-proof")
    container = f"lab-{VICTIM}-procedures"
    unit = standin_unit(container)
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(engine.execute()))
    worker.start()
    try:
        # Mid-wave: once Huế's batch has started the trial phase, its stand-in goes down.
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline and worker.is_alive():
            rows = {(s.province, s.step_id): s.status for s in store.steps(run.id)}
            if rows.get((VICTIM, "sso_test")) in ("running", "done"):
                break
            time.sleep(0.5)
        stopped = podman("exec", container, "systemctl", "stop", unit)
        assert stopped.returncode == 0, stopped.stderr
        worker.join(3600)
    finally:
        podman("exec", container, "systemctl", "start", unit)
    assert result and result[0] == "completed_with_failures", result
    progress = store.progress(run.id)
    by = {p.province: p for p in progress.provinces}
    assert by["tuyen_quang"].status == "done" and by["ho_chi_minh"].status == "done"
    assert by[VICTIM].status == "rolled_back", by[VICTIM]
    rollbacks = [
        e.step_id
        for e in store.audit(run.id)
        if e.province == VICTIM and e.action == "rollback.result" and not e.item
    ]
    order = [s.id for _, s in loaded.runbook.steps()]
    assert rollbacks == sorted(rollbacks, key=order.index, reverse=True)  # last first
    checks = {r.check_id: r.provinces_done for r in progress.readiness}
    # Huế's NAPD declaration is not withdrawn by a rollback (a legal fact): it stays done.
    assert checks["admin_units_declared"] == ("tuyen_quang", "hue", "ho_chi_minh")
    assert checks["portal_interface_closed"] == ("tuyen_quang", "ho_chi_minh")
    report = render_report(progress, "json")
    assert json.loads(report)["run"]["status"] == "completed_with_failures"
