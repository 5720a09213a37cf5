"""Lab proof of the cutover engine: runbooks/rehearsal.yml on the session's converged lab (the
three default provinces: tuyen_quang the pilot, then hue and ho_chi_minh together), run the
way `make lab` runs it — `govops cutover run … --approve-as NAME` as a child process, against
the throwaway environment's inventories, cache (CA, SSH key) and the Prometheus on `monitor`.

Mid-wave, once Huế's trial has started, Huế's procedures stand-in is stopped: Huế fails at its
next procedures step and rolls back (the rollbacks of the steps it started, last first; the
stand-in comes back meanwhile, as its operator would bring it back, so that traffic can be
restored to it); Tuyên Quang and Hồ Chí Minh City finish. The run ends
`completed_with_failures` (exit 1) and the report counts the readiness checks of the two.

The loopback twin of this test (test_runbook_waves_http.py) runs without the lab.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from govops.runbook.loader import load_snapshot
from govops.runbook.state import PROVINCE_FAILED, RUN_FINAL, Store, open_store
from tests.integration.conftest import ConvergedLab

REPO = Path(__file__).resolve().parents[2]
REHEARSAL = REPO / "runbooks" / "rehearsal.yml"
VICTIM = "hue"
VICTIM_HOST = "hue-procedures"
VICTIM_UNIT = "govops-procedures"  # the govops_system role's unit: govops-<kind>
RUN_TIMEOUT = 1800.0

pytestmark = [pytest.mark.lab, pytest.mark.lab_proof]


def govops(lab: ConvergedLab, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govops.cli", *args],
        cwd=REPO,
        env=lab.lab.environ(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(
    what: str, predicate: Callable[[], bool], engine: subprocess.Popen[str], log: Path
) -> None:
    """Poll `predicate()` until true; fail (with the engine's log) if the engine ends first."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        if predicate():
            return
        if engine.poll() is not None:
            pytest.fail(f"the engine exited {engine.returncode} before {what}:\n{tail(log)}")
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}:\n{tail(log)}")


def tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def step_status(store: Store, run_id: str, province: str, step_id: str) -> str | None:
    for row in store.steps(run_id):
        if row.province == province and row.step_id == step_id and not row.item:
            return row.status
    return None


def province_status(store: Store, run_id: str, province: str) -> str:
    for p in store.progress(run_id).provinces:
        if p.province == province:
            return p.status
    raise KeyError(province)


def test_rehearsal_survives_one_province_going_down(
    converged_lab: ConvergedLab, tmp_path: Path
) -> None:
    lab = converged_lab
    assert lab.provinces == ("tuyen_quang", "hue", "ho_chi_minh")
    state = tmp_path / "state.sqlite3"
    log = tmp_path / "engine.log"
    argv = [
        *(sys.executable, "-m", "govops.cli", "cutover", "run", str(REHEARSAL)),
        *("--env", lab.lab.env, "--inventories", str(lab.lab.inventories)),
        *("--state", str(state), "--as", "lab-proof", "--approve-as", "lab-proof"),
    ]
    stopped = False
    run_id = ""
    with log.open("w", encoding="utf-8") as out:
        engine = subprocess.Popen(
            argv, cwd=REPO, env=lab.lab.environ(), stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_for("the run to be recorded", state.exists, engine, log)
        with open_store(str(state)) as store:
            wait_for("the run to be recorded", lambda: bool(store.runs(1)), engine, log)
            run_id = store.runs(1)[0].id

            # Mid-wave: Huế's batch (with Hồ Chí Minh City) has started the trial phase.
            wait_for(
                "Huế's trial to start",
                lambda: step_status(store, run_id, VICTIM, "sso_test") in ("running", "done"),
                engine,
                log,
            )
            down = lab.exec(VICTIM_HOST, "systemctl", "stop", VICTIM_UNIT)
            assert down.returncode == 0, down.stderr
            stopped = True

            # Huế fails; once its rollback has begun, the stand-in comes back (its operator
            # restarts it) so that the rollback can put traffic back to it.
            wait_for(
                "Huế to fail",
                lambda: province_status(store, run_id, VICTIM) in PROVINCE_FAILED,
                engine,
                log,
            )
            up = lab.exec(VICTIM_HOST, "systemctl", "start", VICTIM_UNIT)
            assert up.returncode == 0, up.stderr
            stopped = False

        code = engine.wait(RUN_TIMEOUT)
    finally:
        if engine.poll() is None:
            engine.terminate()  # the engine this test started, by its own handle
            engine.wait(60)
        if stopped:
            lab.exec(VICTIM_HOST, "systemctl", "start", VICTIM_UNIT)
    assert code == 1, f"expected exit 1 (completed with failures), got {code}:\n{tail(log)}"

    with open_store(str(state)) as store:
        run = store.run(run_id)
        assert run.status in RUN_FINAL and run.status == "completed_with_failures"
        progress = store.progress(run_id)
        by = {p.province: p for p in progress.provinces}
        assert by["tuyen_quang"].status == "done", by["tuyen_quang"]
        assert by["ho_chi_minh"].status == "done", by["ho_chi_minh"]
        assert by[VICTIM].status == "rolled_back", (by[VICTIM], tail(log))
        # A procedures step of the trial (the stand-in went down during it or before it).
        assert by[VICTIM].failed_step in (
            "sso_test",
            "dossier_per_commune",
            "dossier_sync",
            "payment_test",
            "notification_test",
        ), by[VICTIM]

        # Huế's rollbacks ran last first, over the steps it had started.
        order = [s.id for _, s in load_snapshot(run.runbook_text, run.runbook_path).steps()]
        rolled = [
            e.step_id
            for e in store.audit(run_id)
            if e.province == VICTIM and e.action == "rollback.result" and not e.item
        ]
        assert rolled, "no rollback recorded for Huế"
        assert rolled == sorted(rolled, key=order.index, reverse=True)
        assert {"restore_traffic", "switch_dns", "switch_network", "drain_traffic"} <= set(rolled)
        # No audit entry says a step of the two others failed.
        assert not [
            e
            for e in store.audit(run_id)
            if e.province in ("tuyen_quang", "ho_chi_minh") and e.action == "rollback.result"
        ]

    # Huế is back in service: its hosts are not drained, its procedures system answers.
    flag = lab.exec(VICTIM_HOST, "test", "-e", "/var/lib/govops/drained")
    assert flag.returncode != 0, "hue-procedures is still drained after the rollback"
    ready = lab.exec(VICTIM_HOST, "systemctl", "is-active", VICTIM_UNIT)
    assert ready.stdout.strip() == "active", ready.stdout

    # The report, as `make lab` prints it.
    report = govops(lab, "cutover", "report", run_id, "--state", str(state), "--format", "json")
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["run"]["status"] == "completed_with_failures"
    checks = {r["check_id"]: r for r in data["readiness"]}
    # Huế's NAPD declaration is not withdrawn by a rollback (a legal fact): it stays done.
    assert checks["admin_units_declared"]["provinces_done"] == ["tuyen_quang", "hue", "ho_chi_minh"]
    for check in ("portal_interface_closed", "sso_tested", "payment_tested"):
        assert "tuyen_quang" in checks[check]["provinces_done"], (check, checks[check])
        assert "ho_chi_minh" in checks[check]["provinces_done"], (check, checks[check])
    # Read-only tests (noop rollbacks) Huế passed before going down stay counted; what it
    # never reached is not.
    assert VICTIM not in checks["portal_interface_closed"]["provinces_done"]
    assert checks["portal_interface_closed"]["done"] == 2
    coverage = {(c["province"], c["step_id"]): c for c in data["communes"]}
    for province in ("tuyen_quang", "ho_chi_minh"):
        row = coverage[(province, "dossier_per_commune")]
        assert row["tested"] == row["total"] > 0, row
    text = govops(lab, "cutover", "report", run_id, "--state", str(state))
    assert text.returncode == 0, text.stderr
    assert "/34" in text.stdout and "rolled_back" in text.stdout
