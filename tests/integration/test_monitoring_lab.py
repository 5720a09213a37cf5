"""Lab proof of the monitoring: on the default lab, after converge, Prometheus on `monitor` sees
every system of every lab province up; stopping one stand-in fires its alert through the lab's
Alertmanager to a webhook receiver in this test.

Needs the lab (podman, root, the lab image) and what the other parts of the suite provide:
playbooks/site.yml (which imports playbooks/monitoring.yml) and the roles that install the
stand-ins. Until those exist the test is skipped and says which is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from govops.lab.paths import LabPaths
from govops.lab.podman import write_containers_conf
from tests.integration import monitoring_stack as stack

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SITE = REPO / "playbooks" / "site.yml"
SYSTEMS = ("procedures", "documents", "lgsp", "reporting", "meetings")


def _missing() -> str | None:
    if not SITE.exists():
        return "playbooks/site.yml does not exist yet"
    if "monitoring.yml" not in SITE.read_text(encoding="utf-8"):
        return "playbooks/site.yml does not import playbooks/monitoring.yml yet"
    if not any((REPO / "roles" / "govops_system" / "tasks").glob("*.yml")):
        return "roles/govops_system (the stand-ins' role) has no tasks yet"
    return None


pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(_missing() is not None, reason=f"lab monitoring: {_missing()}"),
]


@dataclass(frozen=True)
class Lab:
    provinces: tuple[str, ...]
    gateway: str
    env: dict[str, str]

    def exec(self, host: str, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", "exec", f"lab-{host}", *command],
            env=self.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def query(self, expr: str) -> list[dict[str, object]]:
        """A PromQL query asked from inside `monitor` (no firewall opening needed for tests)."""
        url = f"http://127.0.0.1:9090/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        out = self.exec("monitor", "curl", "-sf", url)
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        assert body["status"] == "success", body
        result: list[dict[str, object]] = body["data"]["result"]
        return result


@pytest.fixture(scope="module")
def webhook() -> Iterator[stack.Webhook]:
    hook = stack.start_webhook(host="0.0.0.0")  # the lab's containers reach the host's gateway
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def lab(webhook: stack.Webhook) -> Lab:
    topology = yaml.safe_load((REPO / "inventories/lab/topology.yml").read_text(encoding="utf-8"))
    paths = LabPaths.default()
    env = {**os.environ, "CONTAINERS_CONF": str(write_containers_conf(paths.containers_conf))}
    up = subprocess.run([str(BIN / "govops"), "lab", "up", "--env", "lab"], cwd=REPO, env=env)
    assert up.returncode == 0, "govops lab up failed"
    provinces = tuple(topology["default_provinces"])
    gateway = topology["network"]["gateway"]
    port = webhook.server.server_address[1]
    receivers = [
        {"name": "oncall-pager", "webhook_urls": [f"http://{gateway}:{port}/hook"]},
        {"name": "tickets", "webhook_urls": [f"http://{gateway}:{port}/hook"]},
    ]
    extra = {
        "alertmanager_receivers": receivers,
        "alertmanager_group_wait": "5s",
        "alertmanager_group_interval": "10s",
        "prometheus_scrape_interval": "5s",
        "prometheus_evaluation_interval": "5s",
        "prometheus_prober_scrape_interval": "30s",
        "prometheus_prober_scrape_timeout": "25s",
    }
    limit = ":".join([*(f"province_{p}" for p in provinces), "national", "monitoring"])
    converge = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "inventories/lab", str(SITE), "--limit", limit,
         "-e", json.dumps(extra)],
        cwd=REPO, env={**env, "PATH": f"{BIN}:{env.get('PATH', '')}"},
    )  # fmt: skip
    assert converge.returncode == 0, "converging the lab failed"
    return Lab(provinces, gateway, env)


def test_every_system_of_every_lab_province_is_up(lab: Lab) -> None:
    expected = {(p, s) for p in lab.provinces for s in SYSTEMS}

    def all_up() -> bool:
        rows = lab.query("province_system:govops_front_up:max == 1")
        seen = {(r["metric"]["province"], r["metric"]["system"]) for r in rows}  # type: ignore[index]
        return expected <= seen

    stack.wait_for(f"{len(expected)} systems up in the lab's Prometheus", all_up, timeout=300)
    checks = lab.query("province_system_check:govops_probe_success:max")
    assert checks, "the domain prober's transactions are not in Prometheus"


def test_stopping_a_standin_fires_its_alert(lab: Lab, webhook: stack.Webhook) -> None:
    province = lab.provinces[0]
    host = f"{province.replace('_', '-')}-reporting"
    units = lab.exec(host, "systemctl", "list-units", "--plain", "--no-legend", "govops-*")
    unit = next(
        (line.split()[0] for line in units.stdout.splitlines() if "reporting" in line), None
    )
    assert unit, f"no govops reporting unit on {host}: {units.stdout}"
    stopped = lab.exec(host, "systemctl", "stop", unit)
    assert stopped.returncode == 0, stopped.stderr
    started = time.monotonic()
    try:

        def arrived() -> bool:
            return bool(
                webhook.firing(
                    lambda labels: (
                        labels.get("alertname") == "GovopsSystemDown"
                        and labels.get("province") == province
                        and labels.get("system") == "reporting"
                    )
                )
            )

        # for: 2m, plus a scrape, an evaluation and Alertmanager's group_wait.
        stack.wait_for(
            "GovopsSystemDown from the lab's Alertmanager", arrived, timeout=300, every=2
        )
    finally:
        lab.exec(host, "systemctl", "start", unit)
    assert time.monotonic() - started >= 120, "fired before its `for: 2m`"
