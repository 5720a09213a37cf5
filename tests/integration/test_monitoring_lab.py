"""Lab proof of the monitoring: on the default lab, after converge, Prometheus on `monitor` sees
every system of every lab province up and the domain prober's transactions succeeding; stopping
one stand-in fires its alert through the lab's Alertmanager to a webhook receiver in this test.

Uses the session's converged lab (tests/integration/conftest.py): site.yml imports
playbooks/monitoring.yml, and the fixture's extra vars point Alertmanager's receivers at
`converged_lab.webhook` and shorten the scrape and evaluation intervals. Nothing here is
skipped: without podman, root or the lab image the fixture fails, and so does the test.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest

from exporters.govops_prober.checks import TRANSACTIONS
from tests.integration import monitoring_stack as stack
from tests.integration.conftest import ConvergedLab

pytestmark = [pytest.mark.lab, pytest.mark.lab_proof]

SYSTEMS = ("procedures", "documents", "lgsp", "reporting", "meetings")


def _pairs(rows: list[dict[str, Any]], *labels: str) -> set[tuple[str, ...]]:
    return {tuple(str(r["metric"].get(label, "")) for label in labels) for r in rows}


def _prober_checks(lab: ConvergedLab, province: str, module: str = "all") -> dict[str, str]:
    """The prober's own account of one province's transactions: {check: "ok …" | "FAIL …"}."""
    query = urllib.parse.urlencode({"target": province, "module": module, "debug": "true"})
    out = lab.exec("monitor", "curl", "-s", "-m", "60", f"http://127.0.0.1:9471/probe?{query}")
    head = out.stdout.split("\n\n", 1)[0].splitlines()[1:]  # the lines before the metrics
    lines = [line for line in head if line[:4] in ("ok  ", "FAIL")]
    return {line[5:].split()[0].split("/")[-1]: line for line in lines}


def _publish_agency_codes(lab: ConvergedLab, province: str) -> dict[str, Any]:
    """What the cutover's `register_commune_codes` step does: the province's documents system
    registers its agencies' identification codes on the Document Axis (and the portal)."""
    url = f"https://{province.replace('_', '-')}-documents/api/agencies/publish"
    out = lab.exec(
        "monitor", "curl", "-sS", "-m", "30", "--cacert", "/etc/ssl/govops/ca.crt",
        "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}", url,
    )  # fmt: skip
    assert out.returncode == 0, f"POST {url}: {out.stderr}"
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer


def _target_errors(lab: ConvergedLab, job: str) -> str:
    """Prometheus' own reason for each failing target of `job` (for a failure message)."""
    out = lab.exec("monitor", "curl", "-sf", "http://127.0.0.1:9090/api/v1/targets?state=active")
    if out.returncode != 0:
        return f"(targets API: {out.stderr.strip()})"
    targets = json.loads(out.stdout)["data"]["activeTargets"]
    errors = {
        t["labels"].get("instance", "?"): t.get("lastError", "")
        for t in targets
        if t["labels"].get("job") == job and t.get("health") != "up"
    }
    return f"scrape errors: {errors}"


def test_every_system_of_every_lab_province_is_up(converged_lab: ConvergedLab) -> None:
    lab = converged_lab
    expected = {(p, s) for p in lab.provinces for s in SYSTEMS}
    seen: set[tuple[str, ...]] = set()

    def all_up() -> bool:
        nonlocal seen
        seen = _pairs(lab.query("province_system:govops_front_up:max == 1"), "province", "system")
        return expected <= seen

    try:
        stack.wait_for(f"{len(expected)} systems up in the lab's Prometheus", all_up, timeout=180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; not up: {sorted(expected - seen)}") from None
    # Every host's node_exporter too: the file_sd targets are the registry's, all scraped.
    # Waited for: one slow scrape on a loaded machine is a blip, not a finding.
    down: list[dict[str, Any]] = []

    def nodes_up() -> bool:
        nonlocal down
        down = lab.query('up{job="node"} == 0')
        return bool(lab.query('up{job="node"}')) and not down

    try:
        stack.wait_for("every node_exporter scraped", nodes_up, timeout=60, every=5)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; down: {sorted(_pairs(down, 'host'))}; {_target_errors(lab, 'node')}"
        ) from None


def test_the_domain_probers_transactions_succeed(converged_lab: ConvergedLab) -> None:
    """Every transaction succeeds once the cutover's first step has registered each province's
    agencies on the Document Axis; before that, the Axis round trip fails, and says why."""
    lab = converged_lab
    expected = {(p, c.system, c.name) for p in lab.provinces for c in TRANSACTIONS}
    axis = {(p, "documents", "axis_roundtrip") for p in lab.provinces}
    seen: set[tuple[str, ...]] = set()
    failing: set[tuple[str, ...]] = set()

    def succeeding(wanted: set[tuple[str, ...]]) -> Callable[[], bool]:
        def check() -> bool:
            nonlocal seen, failing
            rows = lab.query("province_system_check:govops_probe_success:max")
            seen = _pairs(rows, "province", "system", "check")
            failing = _pairs(
                [r for r in rows if float(r["value"][1]) != 1.0], "province", "system", "check"
            )
            return wanted <= seen and not (failing & wanted)

        return check

    def wait(what: str, wanted: set[tuple[str, ...]]) -> None:
        try:
            # A prober scrape every 15 s (the fixture's extra vars), plus an evaluation.
            stack.wait_for(what, succeeding(wanted), timeout=180, every=5)
        except AssertionError as exc:
            missing, bad = sorted(wanted - seen), sorted(failing & wanted)
            debug = _prober_checks(lab, (bad or missing)[0][0]) if (bad or missing) else {}
            raise AssertionError(
                f"{exc}; missing: {missing}; failing: {bad}\nprober says:\n"
                + "\n".join(debug.values())
            ) from None

    wait("the prober's checks succeeding but the Axis round trip", expected - axis)
    # No agency is registered on the Axis yet: the round trip fails, naming the reason.
    for province in lab.provinces:
        line = _prober_checks(lab, province, "axis_roundtrip").get("axis_roundtrip", "")
        assert line.startswith("FAIL") and "not registered" in line, (province, line)
    for province in lab.provinces:
        answer = _publish_agency_codes(lab, province)
        agencies = lab.province(province)["agencies"]
        assert answer["docaxis_registered"] == len(agencies) > 1, (province, answer)
    wait("every check of the domain prober succeeding", expected)

    up = lab.query('govops_up{job="domain_prober"}')
    assert {r["metric"]["province"] for r in up} == set(lab.provinces), up
    assert all(float(r["value"][1]) == 1.0 for r in up), up
    # Each province's commune ledger is kept: a last success per commune tested so far.
    tested = _pairs(lab.query("province:govops_communes_tested:count > 0"), "province")
    assert tested == {(p,) for p in lab.provinces}, tested


def test_stopping_a_standin_fires_its_alert(converged_lab: ConvergedLab) -> None:
    lab = converged_lab
    webhook = lab.webhook
    province, system = lab.provinces[0], "reporting"
    host = f"{province.replace('_', '-')}-{system}"
    unit = f"govops-{system}"
    active = lab.exec(host, "systemctl", "is-active", unit)
    assert active.stdout.strip() == "active", f"{unit} on {host}: {active.stdout}{active.stderr}"

    def matching(labels: dict[str, str]) -> bool:
        return (
            labels.get("alertname") == "GovopsSystemDown"
            and labels.get("province") == province
            and labels.get("system") == system
        )

    assert not webhook.firing(matching), "GovopsSystemDown arrived before anything was stopped"
    stopped = lab.exec(host, "systemctl", "stop", unit)
    assert stopped.returncode == 0, stopped.stderr
    started = time.monotonic()
    try:
        # for: 2m, after a failed probe (5 s scrapes), an evaluation (5 s) and Alertmanager's
        # group_wait (5 s).
        stack.wait_for(
            f"GovopsSystemDown({province}, {system}) at the webhook through Alertmanager",
            lambda: bool(webhook.firing(matching)),
            timeout=300,
            every=2,
        )
        took = time.monotonic() - started
    finally:
        restarted = lab.exec(host, "systemctl", "start", unit)
    assert restarted.returncode == 0, f"restarting {unit} on {host}: {restarted.stderr}"
    assert took >= 120, f"fired after {took:.0f} s, before its `for: 2m`"
    alert = webhook.firing(matching)[0]
    assert alert["annotations"]["runbook_url"].endswith("#govopssystemdown"), alert
    assert alert["labels"]["severity"] == "critical", alert
    others = webhook.firing(
        lambda labels: labels.get("alertname") == "GovopsSystemDown" and not matching(labels)
    )
    assert not others, f"other systems reported down: {[a['labels'] for a in others]}"

    # Restarted, it is seen up again: the lab is left as the next test expects it.
    stack.wait_for(
        f"{system} of {province} up again",
        lambda: bool(
            lab.query(
                f'province_system:govops_front_up:max{{province="{province}",system="{system}"}}'
                " == 1"
            )
        ),
        timeout=120,
        every=2,
    )
