"""Lab proof of the network transfer (issue 16 part 4): runbooks/rehearsal.yml on the session's
converged lab, run as `make lab` runs it. While Huế's `transfer_endpoints` step runs, Huế's new
procedures system is stopped: the transfer cannot be verified (the synthetic dossier sent
through the NDXP cannot land in it), Huế fails and rolls back — its NDXP registration no longer
names its gateway and its gateway's national entry answers 421 again, both checked here — while
Tuyên Quang and Hồ Chí Minh City finish, registered at their gateways, a dossier sent through
the NDXP landing in their procedures systems.

Also printed (for the issue's "time from switch to verified, per province"): for each province
that finished, the seconds from the transfer's start to its verification.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from govops.runbook.state import PROVINCE_FAILED, open_store
from tests.integration.conftest import ConvergedLab
from tests.integration.test_runbook_lab import (
    REHEARSAL,
    REPO,
    RUN_TIMEOUT,
    province_status,
    step_status,
    tail,
    wait_for,
)

VICTIM, VICTIM_HOST, VICTIM_UNIT = "hue", "hue-procedures", "govops-procedures"
OTHERS = ("tuyen_quang", "ho_chi_minh")
CA = "/etc/ssl/govops/ca.crt"

pytestmark = [pytest.mark.lab, pytest.mark.lab_proof]


def _label(province: str) -> str:
    return province.replace("_", "-")


def _curl(lab: ConvergedLab, host: str, url: str) -> tuple[int, str]:
    """Status and body of a GET made on a lab host (its CA, its names)."""
    out = lab.exec(host, "curl", "-s", "--cacert", CA, "-w", "\n%{http_code}", url)
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body


def test_killing_one_provinces_new_system_during_the_transfer_rolls_it_back(
    converged_lab: ConvergedLab, tmp_path: Path
) -> None:
    lab = converged_lab
    assert lab.provinces == ("tuyen_quang", VICTIM, "ho_chi_minh")
    state, log = tmp_path / "state.sqlite3", tmp_path / "engine.log"
    argv = [
        *(sys.executable, "-m", "govops.cli", "cutover", "run", str(REHEARSAL)),
        *("--env", lab.lab.env, "--inventories", str(lab.lab.inventories)),
        *("--state", str(state), "--as", "lab-proof", "--approve-as", "lab-proof"),
    ]
    stopped, run_id = False, ""
    with log.open("w", encoding="utf-8") as out:
        engine = subprocess.Popen(
            argv, cwd=REPO, env=lab.lab.environ(), stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_for("the run to be recorded", state.exists, engine, log)
        with open_store(str(state)) as store:
            wait_for("the run to be recorded", lambda: bool(store.runs(1)), engine, log)
            run_id = store.runs(1)[0].id
            wait_for(
                "Huế's transfer to start",
                lambda: (
                    step_status(store, run_id, VICTIM, "transfer_endpoints")
                    in ("running", "retrying")
                ),
                engine,
                log,
            )
            down = lab.exec(VICTIM_HOST, "systemctl", "stop", VICTIM_UNIT)
            assert down.returncode == 0, down.stderr
            stopped = True
            wait_for(
                "Huế to fail",
                lambda: province_status(store, run_id, VICTIM) in PROVINCE_FAILED,
                engine,
                log,
            )
            # Its operator brings it back, so that the rollback can restore traffic to it.
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
        by = {p.province: p for p in store.progress(run_id).provinces}
        assert by[VICTIM].status == "rolled_back", (by[VICTIM], tail(log))
        assert by[VICTIM].failed_step == "transfer_endpoints", by[VICTIM]
        for province in OTHERS:
            assert by[province].status == "done", by[province]
        audit = store.audit(run_id)
        rolled = [
            e.step_id
            for e in audit
            if e.province == VICTIM and e.action == "rollback.result" and not e.item
        ]
        assert rolled[0] == "transfer_endpoints", rolled  # undone first, then the network
        results = {
            e.step_id: e.result
            for e in audit
            if e.province == VICTIM and e.action == "rollback.result" and not e.item
        }
        assert results["transfer_endpoints"] == "rolled_back", results
        started = {
            e.province: e.at
            for e in audit
            if e.step_id == "transfer_endpoints" and e.action == "step.start"
        }
        # Done = its action ran and its verification passed (step.result "done"; step.verify
        # is only the record of a retry that found the work already done).
        verified = {
            e.province: e.at
            for e in audit
            if e.step_id == "transfer_endpoints"
            and e.action in ("step.result", "step.verify", "step.reconcile")
            and e.result == "done"
            and not e.item
        }

    # Huế: the NDXP no longer registers its gateway; its national entry is misdirected (421).
    gateway = f"{_label(VICTIM)}-lgsp"
    status, body = _curl(lab, gateway, f"https://{gateway}/gw/ndxp/api/providers/{VICTIM}")
    assert status == 404 or json.loads(body)["endpoint"] != f"https://{gateway}/ndxp", body
    assert _curl(lab, gateway, f"https://{gateway}/ndxp/healthz")[0] == 421
    assert lab.exec(gateway, "test", "-e", "/var/lib/govops/lgsp-transferred").returncode != 0

    # The others: registered at their gateways, whose national entry reaches procedures.
    for province in OTHERS:
        gw = f"{_label(province)}-lgsp"
        status, body = _curl(lab, gw, f"https://{gw}/gw/ndxp/api/providers/{province}")
        assert status == 200 and json.loads(body)["endpoint"] == f"https://{gw}/ndxp", body
        assert _curl(lab, gw, f"https://{gw}/ndxp/healthz")[0] == 200
        assert province in verified and province in started, (started, verified)
        took = verified[province] - started[province]
        print(f"{province}: transfer switched and verified in {took:.1f} s")
