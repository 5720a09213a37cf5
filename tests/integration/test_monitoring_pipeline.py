"""The whole alerting path without the lab: stand-ins → blackbox_exporter and the domain prober
→ Prometheus (the roles' templates, the generated rules) → Alertmanager → a webhook here.

A province's stand-ins run in this process on loopback; the real Debian binaries run as child
processes on free ports. Prometheus first sees every system up, then one stand-in is stopped
and the matching alert must reach the webhook. Dashboards' queries and the readiness board are
checked against the same real Prometheus.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporters.board.render import collect, render
from exporters.dashboards import generate as dashboards
from exporters.govops_prober.from_estate import config_from_estate
from exporters.govops_prober.prober import Prober
from exporters.govops_prober.server import Exporter, serve
from govops.registry import load_estate
from tests.chromium import png_size, screenshot
from tests.integration import monitoring_stack as stack
from tests.integration.standin_estate import (
    NATIONAL,
    SYSTEMS,
    StandinEstate,
    free_ports,
    start_estate,
)

ROOT = Path(__file__).resolve().parents[2]
PROVINCE = "cao_bang"


@dataclass
class Stack:
    estate: StandinEstate
    prometheus: str
    webhook: stack.Webhook
    workdir: Path
    alertmanager: str
    sink: str  # the alert sink (roles/alertmanager/files), as the lab's receiver


def _targets(estate: StandinEstate) -> list[dict[str, object]]:
    """blackbox_https.json as `govops render` writes it, with loopback URLs for the stand-ins."""
    entries: list[dict[str, object]] = []
    for sid in SYSTEMS:
        entries.append(
            {
                "targets": [f"{estate.url(f'{PROVINCE}/{sid}')}/readyz"],
                "labels": {
                    "host": f"cao-bang-{sid}",
                    "environment": "lab",
                    "province": PROVINCE,
                    "zone": "lab",
                    "system": sid,
                    "tier": "gateway" if sid == "lgsp" else "front",
                    "module": f"govops_{sid}",
                },
            }
        )
    for name in NATIONAL:
        entries.append(
            {
                "targets": [f"{estate.url(name)}/readyz"],
                "labels": {"host": name, "environment": "lab", "system": name,
                           "tier": "national", "module": "govops_national"},
            }
        )  # fmt: skip
    return entries


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("monitoring")
    estate = start_estate([PROVINCE], work / "standins")
    processes: list[stack.Process] = []
    prober = Prober(
        config_from_estate(
            load_estate(ROOT / "inventories/lab/estate.yml"),
            endpoints=estate.endpoints,
            commune_period_seconds=60.0,
            state_dir=str(work / "prober-state"),
        )
    )
    server, thread = serve(Exporter(prober), "127.0.0.1", 0)
    webhook = stack.start_webhook()
    try:
        prom_port, am_port, bb_port, sink_port, planned_port = free_ports(5)
        conf = work / "etc"
        (conf / "file_sd").mkdir(parents=True)
        (conf / "rules").mkdir()
        (conf / "file_sd/blackbox_https.json").write_text(json.dumps(_targets(estate)))
        (conf / "file_sd/domain_prober.json").write_text(
            json.dumps([{"targets": [PROVINCE], "labels": {"province": PROVINCE, "zone": "lab"}}])
        )
        for name in ("zone.yml", "slo.yml"):
            stack.quick_rules(ROOT / "exporters/rules" / name, conf / "rules" / name)
            _keep_order(conf / "rules" / name)

        bb = stack.role_defaults("blackbox_exporter")
        catalog = _catalog_systems()
        (conf / "blackbox.yml").write_text(
            stack.render_role_template(
                "blackbox_exporter",
                "blackbox.yml.j2",
                {**bb, "blackbox_exporter_systems": catalog, "blackbox_exporter_ca_certificate": "",
                 "blackbox_exporter_fail_if_not_ssl": False, "blackbox_exporter_timeout": "1s"},
            )
        )  # fmt: skip
        am = stack.role_defaults("alertmanager")
        am["alertmanager_receivers"] = [
            {"name": "oncall-pager", "webhook_urls": [webhook.url]},
            {"name": "tickets", "webhook_urls": [webhook.url]},
        ]
        am.update(alertmanager_group_wait="1s", alertmanager_group_interval="1s",
                  alertmanager_repeat_interval="1h", alertmanager_sink_enabled=True,
                  alertmanager_sink_listen_address=f"127.0.0.1:{sink_port}")  # fmt: skip
        processes.append(_start_sink(sink_port, work))
        processes.append(_start_planned_work(planned_port, am_port, work))
        (conf / "alertmanager.yml").write_text(
            stack.render_role_template("alertmanager", "alertmanager.yml.j2", am)
        )
        prom = stack.role_defaults("prometheus")
        prom.update(
            prometheus_mode="zone",
            prometheus_zone="",
            prometheus_config_dir=str(conf),
            prometheus_listen_address=f"127.0.0.1:{prom_port}",
            prometheus_scrape_interval="1s",
            prometheus_scrape_timeout="1s",
            prometheus_evaluation_interval="1s",
            prometheus_external_labels={"environment": "lab", "prometheus": "zone-test"},
            prometheus_file_sd_jobs=["blackbox_https", "domain_prober"],
            prometheus_blackbox_address=f"127.0.0.1:{bb_port}",
            prometheus_prober_address=f"127.0.0.1:{server.server_address[1]}",
            prometheus_prober_scrape_interval="2s",
            prometheus_prober_scrape_timeout="2s",
            prometheus_alertmanagers=[f"127.0.0.1:{am_port}"],
            prometheus_planned_work_targets=[f"127.0.0.1:{planned_port}"],
            prometheus_federate_targets=[],
            prometheus_cutover_targets=[],
            prometheus_extra_scrape_configs=[],
        )
        (conf / "prometheus.yml").write_text(
            stack.render_role_template("prometheus", "prometheus.yml.j2", prom)
        )
        processes.append(
            stack.start(
                "blackbox",
                [
                    f"--config.file={conf / 'blackbox.yml'}",
                    f"--web.listen-address=127.0.0.1:{bb_port}",
                ],
                work,
                f"http://127.0.0.1:{bb_port}/-/healthy",
            )
        )
        processes.append(
            stack.start(
                "alertmanager",
                [f"--config.file={conf / 'alertmanager.yml'}", f"--storage.path={work / 'am-data'}",
                 f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                work,
                f"http://127.0.0.1:{am_port}/-/ready",
            )
        )  # fmt: skip
        processes.append(
            stack.start(
                "prometheus",
                [f"--config.file={conf / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                work,
                f"http://127.0.0.1:{prom_port}/-/ready",
            )
        )  # fmt: skip
        yield Stack(
            estate,
            f"http://127.0.0.1:{prom_port}",
            webhook,
            work,
            f"http://127.0.0.1:{am_port}",
            f"http://127.0.0.1:{sink_port}",
        )
    finally:
        for proc in reversed(processes):
            proc.stop()
        webhook.close()
        server.shutdown()
        server.server_close()
        thread.join()
        prober.close()
        estate.close()


# What a system down causes waits longer than the system-down alert in the real rules (5-10
# min against 2): kept so here (8 s against 2), or the race Alertmanager never sees in the
# field would decide which of them pages.
CAUSED = {
    "GovopsSSOFailing",
    "GovopsDossierSubmissionFailing",
    "GovopsTransactionFailing",
    "GovopsDossierSyncLagging",
    "GovopsCommunesNotTested",
    "GovopsErrorBudgetBurn",
}


def _keep_order(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for group in data["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in CAUSED:
                rule["for"] = "8s"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _start_sink(port: int, work: Path) -> stack.Process:
    """The alert sink the alertmanager role installs, run from the role's files."""
    script = ROOT / "roles" / "alertmanager" / "files" / "govops_alert_sink.py"
    log = work / "sink.log"
    args = ["--listen", f"127.0.0.1:{port}", "--file", str(work / "sink" / "notifications.jsonl")]
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, str(script), *args], stdout=out, stderr=subprocess.STDOUT
        )
    proc = stack.Process("alert sink", popen, log)
    stack.wait_for(
        "the alert sink", lambda: _get(f"http://127.0.0.1:{port}/-/healthy") == b"ok\n", 30, 0.2
    )
    return proc


def _start_planned_work(port: int, am_port: int, work: Path) -> stack.Process:
    """The planned-work exporter the alertmanager role installs, asking the test's Alertmanager."""
    script = ROOT / "roles" / "alertmanager" / "files" / "govops_planned_work_exporter.py"
    log = work / "planned-work.log"
    args = ["--listen", f"127.0.0.1:{port}", "--alertmanager", f"http://127.0.0.1:{am_port}"]
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, str(script), *args], stdout=out, stderr=subprocess.STDOUT
        )
    proc = stack.Process("planned-work exporter", popen, log)
    url = f"http://127.0.0.1:{port}/metrics"
    stack.wait_for("the planned-work exporter", lambda: _get(url) is not None, 30, 0.2)
    return proc


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            body: bytes = resp.read()
            return body
    except OSError:
        return None


def _notifications(running: Stack) -> list[dict[str, object]]:
    body = _get(f"{running.sink}/notifications")
    assert body is not None, "the alert sink does not answer"
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def _catalog_systems() -> dict[str, object]:
    """The catalog's systems as the rendered group_vars give them to the roles."""
    data = yaml.safe_load((ROOT / "inventories/lab/group_vars/all/estate.yml").read_text())
    systems: dict[str, object] = data["govops_systems"]
    return systems


def test_every_system_is_up_in_prometheus(running: Stack) -> None:
    def all_up() -> bool:
        fronts = stack.query(
            running.prometheus, f'province_system:govops_front_up:max{{province="{PROVINCE}"}}'
        )
        checks = stack.query(
            running.prometheus,
            f'govops_probe_success{{province="{PROVINCE}", job="domain_prober"}}',
        )
        return (
            len(fronts) == 5
            and all(r["value"][1] == "1" for r in fronts)
            and len(checks) == 9
            and all(r["value"][1] == "1" for r in checks)
        )

    stack.wait_for("all five systems and nine transactions up", all_up, timeout=60)
    national = stack.query(running.prometheus, 'probe_success{tier="national"}')
    assert len(national) == 4 and all(r["value"][1] == "1" for r in national)
    certs = stack.query(running.prometheus, "govops_commune_test_period_seconds")
    assert certs and certs[0]["value"][1] == "60"


def test_dashboard_queries_run_on_a_real_prometheus(running: Stack) -> None:
    for text in dashboards.files().values():
        for expr in dashboards.queries(json.loads(text)):
            expr = expr.replace("$province", PROVINCE).replace("$system", "procedures")
            if expr.startswith("label_values("):
                expr = expr[len("label_values(") :].rsplit(",", 1)[0]
            stack.query(running.prometheus, expr)  # raises unless Prometheus accepts it


def test_board_from_a_real_prometheus(running: Stack) -> None:
    estate = load_estate(ROOT / "inventories/lab/estate.yml")
    board = collect(estate, running.prometheus)

    def row_up() -> bool:
        # The board reads the recording rules, evaluated after the raw series the test above
        # waited for (seconds later on a busy machine: make test runs two tests at once).
        nonlocal board
        board = collect(estate, running.prometheus)
        row = next(p for p in board.provinces if p.codename == PROVINCE)
        return row.all_up and not row.failing

    stack.wait_for(f"{PROVINCE}'s row of the board all up", row_up, timeout=60)
    html = running.workdir / "board.html"
    html.write_text(render(board), encoding="utf-8")
    png = running.workdir / "board.png"
    screenshot(html, png, running.workdir, size=(1280, 1800))
    assert png_size(png) == (1280, 1800) and png.stat().st_size > 50_000


def test_a_stopped_standin_fires_its_alert_to_the_webhook(running: Stack) -> None:
    # After the "all up" test: stop reporting; blackbox fails it, GovopsSystemDown must arrive.
    running.estate.stop(f"{PROVINCE}/reporting")

    def arrived() -> bool:
        return bool(
            running.webhook.firing(
                lambda labels: (
                    labels.get("alertname") == "GovopsSystemDown"
                    and labels.get("province") == PROVINCE
                    and labels.get("system") == "reporting"
                )
            )
        )

    took = stack.wait_for("GovopsSystemDown for cao_bang/reporting at the webhook", arrived, 60)
    alert = running.webhook.firing(lambda labels: labels.get("alertname") == "GovopsSystemDown")[0]
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].endswith("#govopssystemdown")
    assert "reporting of cao_bang is down" in alert["annotations"]["summary"]
    others = running.webhook.firing(
        lambda labels: (
            labels.get("alertname") == "GovopsSystemDown" and labels.get("system") != "reporting"
        )
    )
    assert not others, others
    assert took < 60


def test_one_fault_is_one_page_at_the_alert_sink(running: Stack) -> None:
    """The role's Alertmanager configuration and alert sink, for real: procedures stopped, its
    page is stored by the sink; sign-in failing (caused by it) fires too and is inhibited."""
    # Deliveries of the test before (its page reaches the webhook and the sink independently)
    # are in before counting: no new notification for 3 s.
    counts = [len(_notifications(running))]

    def settled() -> bool:
        counts.append(len(_notifications(running)))
        return len(counts) > 6 and len(set(counts[-6:])) == 1

    stack.wait_for("the alert sink settled", settled, 30, 0.5)
    seen = counts[-1]
    running.estate.stop(f"{PROVINCE}/procedures")

    def new(status: str = "firing") -> list[dict[str, Any]]:
        return [
            n for n in _notifications(running)[seen:]
            if n["payload"]["status"] == status  # type: ignore[index]
        ]  # fmt: skip

    def paged() -> bool:
        return any(
            (a["labels"]["alertname"], a["labels"].get("system"))
            == ("GovopsSystemDown", "procedures")
            for n in new()
            for a in n["payload"]["alerts"]
        )

    stack.wait_for("the procedures page at the alert sink", paged, 60)

    def sso_inhibited() -> bool:
        body = _get(f"{running.alertmanager}/api/v2/alerts")
        alerts = json.loads(body or b"[]")
        return any(
            a["labels"].get("alertname") == "GovopsSSOFailing"
            and a["labels"].get("province") == PROVINCE
            and a["status"]["state"] == "suppressed"
            for a in alerts
        )

    stack.wait_for("GovopsSSOFailing held back by the page", sso_inhibited, 60)
    fired = [n for n in new() if n["path"] == "/oncall-pager"]
    assert len(fired) == 1, fired
    names = {a["labels"]["alertname"] for n in fired for a in n["payload"]["alerts"]}
    assert names == {"GovopsSystemDown"}, fired
    assert all(n["received_at"].endswith("+07:00") for n in fired), fired


def test_planned_work_silences_are_not_counted_against_the_slo(running: Stack) -> None:
    """A runbook step's silence (tagged as govops/runbook/silences.py tags it) of the whole
    province: the planned-work exporter publishes it, and the SLO samples of the province stop
    (neither good nor bad) while it is active; an on-call engineer's own silence does not."""
    now = datetime.now(UTC)
    own = {
        "matchers": [{"name": "province", "value": PROVINCE, "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
        "createdBy": "on-call",
        "comment": "looking into it",
    }
    step = own | {
        "createdBy": "govops",
        "comment": f"planned work: drain [govops r1/{PROVINCE}/drain]",
    }

    def post(silence: dict[str, Any]) -> str:
        request = urllib.request.Request(
            f"{running.alertmanager}/api/v2/silences",
            data=json.dumps(silence).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            return str(json.loads(resp.read())["silenceID"])

    post(own)
    sample = f'province_system:govops_slo_good:sample{{province="{PROVINCE}"}}'
    stack.wait_for(
        "SLO samples of the province", lambda: bool(stack.query(running.prometheus, sample)), 30
    )
    assert not stack.query(running.prometheus, "govops_planned_work")
    silence = post(step)
    try:
        stack.wait_for(
            "govops_planned_work of the province in Prometheus",
            lambda: bool(
                stack.query(
                    running.prometheus, f'govops_planned_work{{province="{PROVINCE}", system=""}}'
                )
            ),
            30,
        )
        stack.wait_for(
            "no SLO sample of the province during planned work",
            lambda: not stack.query(running.prometheus, sample),
            30,
        )
    finally:
        urllib.request.urlopen(
            urllib.request.Request(
                f"{running.alertmanager}/api/v2/silence/{silence}", method="DELETE"
            ),
            timeout=5,
        ).close()
    stack.wait_for(
        "SLO samples again once the planned work's silence ended",
        lambda: bool(stack.query(running.prometheus, sample)),
        30,
    )
