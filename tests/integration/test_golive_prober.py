"""Go-live as the runbook performs it and the prober observes it, on stand-ins run locally:
the rehearsal's portal_register step (operation executor, stand-in adapter) and each system's
set_operation_mode (the request go_live.yml makes) flip real state; the prober's go_live module
fails before, passes after (a dossier submitted on the national portal reaches the province's
procedures system; every system official), and fails again after the step's rollback."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporters.govops_prober.config import SYSTEMS, ProberConfig
from exporters.govops_prober.from_estate import config_from_estate
from exporters.govops_prober.prober import Prober
from exporters.govops_prober.server import Exporter
from govops.registry import load_estate
from govops.runbook.context import load_environment, province_vars
from govops.runbook.executors import ExecContext, RunSettings, executor
from govops.runbook.executors.operation import OperationArgs
from govops.runbook.loader import load_runbook
from govops.runbook.templating import render_value
from tests.integration.standin_estate import StandinEstate, start_estate
from tests.integration.test_operations_standins import PROVINCE, _estate_with_adapters

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinEstate]:
    running = start_estate([PROVINCE], tmp_path_factory.mktemp("standins"))
    yield running
    running.close()


def run_step(step_id: str, role: str, inventory: Path, tmp: Path) -> str:
    """One role (action, verify, rollback) of a rehearsal step, as the engine runs it."""
    runbook = load_runbook(ROOT / "runbooks/rehearsal.yml", ROOT).runbook
    env = load_environment("lab", ROOT, inventory.parent)
    step = next(s for _, s in runbook.steps() if s.id == step_id)
    context = province_vars(env, env.provinces[PROVINCE], "t", "", runbook.vars)
    context |= {"idempotency_key": f"t/{step_id}"}
    action = getattr(step, role)
    assert action.executor == "operation"
    args = OperationArgs.model_validate(render_value(action.args, context))
    settings = RunSettings(env="lab", root=ROOT, log_dir=tmp, inventory=inventory)
    ctx = ExecContext(
        run_id="t",
        province=PROVINCE,
        step_id=step_id,
        role=role,
        idempotency_key=f"t/{step_id}",
        attempt=1,
        timeout=30.0,
        settings=settings,
    )
    outcome = executor("operation").run(args, ctx)
    assert outcome.ok, f"{step_id}.{role}: {outcome.message}"
    return outcome.message


def set_mode(standins: StandinEstate, config: ProberConfig, mode: str) -> None:
    """What playbooks/cutover/go_live.yml does on each system host (through its nginx)."""
    for system in SYSTEMS:
        op = config.operations[f"systems.{system}"]["set_operation_mode"]
        method, url, body = op.request(standins.url(f"{PROVINCE}/{system}"), {"mode": mode})
        req = urllib.request.Request(
            url,
            json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read())["mode"] == mode


def test_go_live_and_its_rollback_as_the_prober_sees_them(
    standins: StandinEstate, tmp_path: Path
) -> None:
    inventory = _estate_with_adapters(tmp_path, standins)
    config = config_from_estate(
        load_estate(ROOT / "inventories/lab/estate.yml"),
        endpoints=standins.endpoints,
        state_dir=str(tmp_path / "state"),
    )
    prober = Prober(config)

    def observed() -> str:
        status, _, body = Exporter(prober).probe(
            {"target": [PROVINCE], "module": ["go_live"]}, "20"
        )
        assert status == 200
        return body.decode()

    def sample(text: str, name: str, labels: str) -> str:
        line = next(x for x in text.splitlines() if x.startswith(f"{name}{{{labels}"))
        return line.rsplit(" ", 1)[1]

    routed = 'check="portal_dossier_routed",province="cao_bang",system="procedures"}'
    official = 'check="official_operation",province="cao_bang",system="procedures"}'
    try:
        before = observed()
        assert sample(before, "govops_probe_success", routed) == "0.0"  # not registered yet
        assert sample(before, "govops_probe_success", official) == "0.0"
        assert (
            sample(before, "govops_system_trial_mode", 'province="cao_bang",system="lgsp"') == "1.0"
        )

        set_mode(standins, config, "official")
        run_step("portal_register", "action", inventory, tmp_path)
        run_step("portal_register", "verify", inventory, tmp_path)
        after = observed()
        assert sample(after, "govops_probe_success", routed) == "1.0", after
        assert sample(after, "govops_probe_success", official) == "1.0", after
        assert (
            sample(after, "govops_system_trial_mode", 'province="cao_bang",system="lgsp"') == "0.0"
        )

        run_step("portal_register", "rollback", inventory, tmp_path)
        set_mode(standins, config, "trial")
        back = observed()
        assert sample(back, "govops_probe_success", routed) == "0.0"
        assert sample(back, "govops_probe_success", official) == "0.0"
    finally:
        prober.close()
