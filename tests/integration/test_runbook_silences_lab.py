"""Lab proof (issue #17): a rehearsal with its drains pages nobody; a fault injected during a
drain of another province still pages.

runbooks/rehearsal.yml runs for the pilot province alone (`--provinces tuyen_quang`) on the
session's converged lab, as a child process like `make lab` runs it. Its drain and switch steps
open Alertmanager silences on `monitor` (alertmanager_url http://monitor:9093, reached through
the inventory's addresses). While Tuyên Quang is drained, Huế's procedures system (not in the
run) is stopped: its GovopsSystemDown reaches the session's webhook receiver within 3 minutes,
while nothing of Tuyên Quang's is sent from the run's start until a minute after its end (the
cutover's own alerts, which carry a `step` label, excepted: they are not planned work). Every
silence the run opened is expired at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from govops.runbook.state import Store, open_store
from tests.integration import monitoring_stack as stack
from tests.integration.conftest import ConvergedLab
from tests.integration.test_runbook_lab import REHEARSAL, REPO, tail, wait_for

PILOT = "tuyen_quang"
VICTIM, VICTIM_HOST, VICTIM_UNIT = "hue", "hue-procedures", "govops-procedures"
DRAIN_STEPS = ("drain_traffic", "switch_network", "switch_dns", "restore_traffic")
PAGE_WITHIN = 180.0

pytestmark = [pytest.mark.lab, pytest.mark.lab_proof]


def _silences(lab: ConvergedLab) -> list[dict[str, Any]]:
    out = lab.exec("monitor", "curl", "-sf", "http://127.0.0.1:9093/api/v2/silences")
    assert out.returncode == 0, f"asking Alertmanager on monitor failed: {out.stderr}"
    found: list[dict[str, Any]] = json.loads(out.stdout)
    return found


def _drained(store: Store, run_id: str) -> bool:
    """The pilot is inside its drain window: a drain/switch step running."""
    return any(
        r.province == PILOT and r.step_id in DRAIN_STEPS and r.status == "running"
        for r in store.steps(run_id)
    )


def test_planned_work_pages_nobody_a_fault_elsewhere_still_pages(
    converged_lab: ConvergedLab, tmp_path: Path
) -> None:
    lab = converged_lab
    state, log = tmp_path / "state.sqlite3", tmp_path / "engine.log"
    seen_before = len(lab.webhook.alerts)
    argv = [
        *(sys.executable, "-m", "govops.cli", "cutover", "run", str(REHEARSAL)),
        *("--env", lab.lab.env, "--inventories", str(lab.lab.inventories)),
        *("--provinces", PILOT, "--state", str(state)),
        *("--as", "lab-proof", "--approve-as", "lab-proof"),
    ]
    stopped = False
    active_during: list[dict[str, Any]] = []
    page_after = -1.0
    with log.open("w", encoding="utf-8") as out:
        engine = subprocess.Popen(
            argv, cwd=REPO, env=lab.lab.environ(), stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_for("the run to be recorded", state.exists, engine, log)
        with open_store(str(state)) as store:
            wait_for("the run to be recorded", lambda: bool(store.runs(1)), engine, log)
            run_id = store.runs(1)[0].id
            wait_for("the pilot's drain", lambda: _drained(store, run_id), engine, log)
            active_during = [
                s
                for s in _silences(lab)
                if s["status"]["state"] == "active" and f"[govops {run_id}/" in s["comment"]
            ]
            # A real fault, elsewhere, during the planned work.
            down = lab.exec(VICTIM_HOST, "systemctl", "stop", VICTIM_UNIT)
            assert down.returncode == 0, down.stderr
            stopped = True
            page_after = stack.wait_for(
                "Huế's GovopsSystemDown page",
                lambda: bool(
                    [
                        a
                        for a in lab.webhook.alerts[seen_before:]
                        if a.get("status") == "firing"
                        and a["labels"].get("alertname") == "GovopsSystemDown"
                        and a["labels"].get("province") == VICTIM
                    ]
                ),
                PAGE_WITHIN,
                every=2,
            )
            up = lab.exec(VICTIM_HOST, "systemctl", "start", VICTIM_UNIT)
            assert up.returncode == 0, up.stderr
            stopped = False
        code = engine.wait(1800)
    finally:
        if engine.poll() is None:
            engine.terminate()  # the engine this test started, by its own handle
            engine.wait(60)
        if stopped:
            lab.exec(VICTIM_HOST, "systemctl", "start", VICTIM_UNIT)
    assert code == 0, f"the pilot's rehearsal failed (exit {code}):\n{tail(log)}"
    print(f"fault to page: {page_after:.0f} s")

    # The silence was there during the drain, scoped to the pilot, not to the cutover's alerts.
    assert active_during, "no active silence of the run while the pilot was drained"
    for silence in active_during:
        names = {(m["name"], m["value"]) for m in silence["matchers"]}
        assert ("province", PILOT) in names and ("step", "") in names, silence

    # A minute after the run (group intervals, a scrape or two): nothing of the pilot's paged.
    time.sleep(60)
    paged = [
        a["labels"]
        for a in lab.webhook.alerts[seen_before:]
        if a.get("status") == "firing"
        and a["labels"].get("province") == PILOT
        and "step" not in a["labels"]
    ]
    assert paged == [], f"planned work paged: {paged}"
    # Every silence of the run expired; each opened one expired in the audit log.
    mine = [s for s in _silences(lab) if f"[govops {run_id}/" in s["comment"]]
    assert mine and {s["status"]["state"] for s in mine} == {"expired"}, mine
    with open_store(str(state)) as store:
        opened = [e for e in store.audit(run_id) if e.action == "silence.open"]
        expired = [e for e in store.audit(run_id) if e.action == "silence.expire"]
    assert set(DRAIN_STEPS) <= {e.step_id for e in opened}
    assert {e.result for e in opened} == {"opened"}
    assert {e.step_id for e in opened} == {e.step_id for e in expired}
