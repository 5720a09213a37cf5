"""One converged lab for the whole integration session.

Converging the default lab (three provinces, 31 hosts) takes minutes on this machine's two
cores, so the Ansible, monitoring and cutover lab proofs share one (`make test` runs the
converge, monitoring and rehearsal proofs; `make lab-proof` all of them): a throwaway environment
(unique name, its own /16, network, SSH key, CA and secrets under a temporary cache, see
tests/fixtures/lab.py) that never touches a running `make lab`. It is started and converged once,
on first use, and removed at the end of the session.

The files run in name order, which is also the order that keeps them honest: the converge
proof (idempotence, check mode) runs before anything is stopped on purpose; the monitoring and
cutover proofs restart what they stop.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from govops.ansible.converge import ConvergeResult
from tests.fixtures.lab import TestLab, make_test_lab
from tests.integration import monitoring_stack as stack

REPO = Path(__file__).resolve().parents[2]


def default_provinces() -> tuple[str, ...]:
    estate = yaml.safe_load((REPO / "inventories/lab/estate.yml").read_text(encoding="utf-8"))
    return tuple(estate["lab"]["default_provinces"])


@dataclass
class ConvergedLab:
    """The session's lab after its first converge."""

    lab: TestLab
    first: ConvergeResult
    extra_args: tuple[str, ...]  # every later converge must pass the same, or it "changes"
    webhook: stack.Webhook
    gateway: str

    @property
    def provinces(self) -> tuple[str, ...]:
        return self.lab.provinces

    def container(self, host: str) -> str:
        return self.lab.container(host)

    def exec(self, host: str, *command: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
        """A command inside a lab host (podman exec, not SSH: no firewall opening needed)."""
        return self.lab.podman().run(
            "exec", self.container(host), *command, check=False, timeout=timeout
        )

    def converge(self, **kwargs: Any) -> ConvergeResult:
        extra = tuple(kwargs.pop("extra_args", ()))
        return self.lab.converge(extra_args=(*self.extra_args, *extra), **kwargs)

    def province(self, codename: str) -> dict[str, Any]:
        """The province's rendered variables (group_vars/province_<codename>/province.yml)."""
        path = self.lab.inventory / "group_vars" / f"province_{codename}" / "province.yml"
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))["govops_province"]
        return data

    def query(self, expr: str) -> list[dict[str, Any]]:
        """A PromQL query asked from inside `monitor`."""
        url = f"http://127.0.0.1:9090/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        out = self.exec("monitor", "curl", "-sf", url)
        assert out.returncode == 0, f"querying Prometheus on monitor failed: {out.stderr}"
        body = json.loads(out.stdout)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def existing_lab(env: str) -> ConvergedLab:
    """A lab already up and converged (`make lab`: env `lab`, the checkout's inventories and
    cache), for the proofs that need neither the session's first converge nor its alert webhook
    (GOVOPS_LAB_PROOF_ENV=lab). Nothing is started, converged or removed here."""
    cache = Path(os.environ.get("GOVOPS_CACHE") or Path.home() / ".cache" / "govops")
    lab = TestLab(REPO, REPO / "inventories", cache, env, default_provinces())
    topology = yaml.safe_load((lab.inventory / "topology.yml").read_text(encoding="utf-8"))
    unused = cast(Any, None)  # the first converge and the webhook are the session lab's
    return ConvergedLab(lab, unused, (), unused, str(topology["network"]["gateway"]))


@pytest.fixture(scope="session")
def converged_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConvergedLab]:
    env = f"t{uuid.uuid4().hex[:6]}"
    lab = make_test_lab(REPO, tmp_path_factory.mktemp("lab"), env, default_provinces())
    webhook: stack.Webhook | None = None
    try:
        lab.up()
        topology = yaml.safe_load((lab.inventory / "topology.yml").read_text(encoding="utf-8"))
        gateway = str(topology["network"]["gateway"])
        # Alertmanager on `monitor` posts to this test process: bound to the lab bridge only.
        webhook = stack.start_webhook(host=gateway)
        hook = f"http://{gateway}:{webhook.server.server_address[1]}/hook"
        extra = {
            "alertmanager_receivers": [
                {"name": "oncall-pager", "webhook_urls": [hook]},
                {"name": "tickets", "webhook_urls": [hook]},
            ],
            "alertmanager_group_wait": "5s",
            "alertmanager_group_interval": "10s",
            "prometheus_scrape_interval": "5s",
            # Prometheus refuses a scrape timeout above the interval (the default is 10s).
            "prometheus_scrape_timeout": "5s",
            "prometheus_evaluation_interval": "5s",
            # The domain prober's transactions: a first sample soon after converge.
            "prometheus_prober_scrape_interval": "15s",
            "prometheus_prober_scrape_timeout": "10s",
        }
        extra_args = ("-e", json.dumps(extra))
        output: list[str] = []
        first = lab.converge(extra_args=extra_args, echo=output.append)
        tail = "\n".join(output[-60:])
        assert first.ok, f"the first converge failed on {first.failed_hosts}:\n{tail}"
        yield ConvergedLab(lab, first, extra_args, webhook, gateway)
    finally:
        if webhook is not None:
            webhook.close()
        lab.down()
