"""`govops estate check`: the committed environments agree, and every kind of disagreement
the issue names is found, one line each, on a mutated copy of the tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from govops.estate.check import Report, check
from govops.estate.views import runbook_calls
from govops.registry import load_estate

from .conftest import ROOT

QUICK = ("hue",)  # mutation tests check one province: the views are the same code for all


def _copy(tmp: Path, env: str) -> Path:
    """The parts of the checkout the check reads, for `env`, into `tmp`."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp / "Pulumi.yaml")
    shutil.copytree(ROOT / "inventories" / env, tmp / "inventories" / env)
    shutil.copytree(ROOT / "runbooks", tmp / "runbooks")
    shutil.copytree(ROOT / "playbooks", tmp / "playbooks")
    (tmp / "infra" / "stacks").mkdir(parents=True)
    for stack in (ROOT / "infra" / "stacks").glob(f"Pulumi.{env}-*.yaml"):
        shutil.copy(stack, tmp / "infra" / "stacks" / stack.name)
    return tmp


def _check(root: Path, env: str, provinces: tuple[str, ...] = QUICK) -> Report:
    return check(root, load_estate(root / "inventories" / env / "estate.yml"), provinces)


def _edit_yaml(path: Path, edit: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _lines(report: Report) -> list[str]:
    return [str(d) for d in report.disagreements]


COMMITTED = sorted(p.parent.name for p in (ROOT / "inventories").glob("*/estate.yml"))


@pytest.mark.parametrize("env", COMMITTED)
def test_every_committed_environment_agrees(env: str) -> None:
    report = _check(ROOT, env, ())
    assert _lines(report) == []
    assert report.counts["hosts"] > 200 and report.counts["runbook calls"] > 1000
    estate = load_estate(ROOT / "inventories" / env / "estate.yml")
    if estate.cloud is not None:
        # Every flow was held against a rule: the plan ran and has rules to hold them.
        assert report.counts["rules"] > 500 and report.counts["flows"] > 1000


def test_a_rule_nobody_needs(tmp_path: Path) -> None:
    root = _copy(tmp_path, "production")

    def add(data: dict) -> None:  # type: ignore[type-arg]
        extra = {"tier": "front", "port": 8443, "protocol": "tcp", "from": "province"}
        data["config"]["govops:systems"]["procedures"]["ports"].append(extra)

    _edit_yaml(root / "infra/stacks/Pulumi.production-hue.yaml", add)
    lines = _lines(_check(root, "production"))
    assert lines == [
        "rule hue-procedures-front-tcp-8443-province (tcp/8443-8443 from 10.46.0.0/16 to "
        "hue-procedures-front): expected by plan; missing from every view's flows "
        "(nothing needs it)"
    ]


def test_national_hosts_where_production_does_not_build_them(tmp_path: Path) -> None:
    """The issue's case: the registry (and so the inventory) had four national hosts that
    the plan never created."""
    root = _copy(tmp_path, "production")
    estate = root / "inventories/production/estate.yml"
    text = estate.read_text(encoding="utf-8")
    estate.write_text(text.replace("counterparts_hosted: false", "counterparts_hosted: true"))
    lines = _lines(_check(root, "production"))
    for where in ("plan", "inventory"):
        assert (
            f"host national-portal (10.0.0.11): expected by registry; missing from {where}" in lines
        )


def test_a_host_removed_from_the_plan(tmp_path: Path) -> None:
    root = _copy(tmp_path, "production")

    def drop(data: dict) -> None:  # type: ignore[type-arg]
        data["config"]["govops:systems"]["procedures"]["hosts"].pop()

    _edit_yaml(root / "infra/stacks/Pulumi.production-hue.yaml", drop)
    lines = _lines(_check(root, "production"))
    assert "host hue-procedures-2 (10.46.64.11): expected by registry; missing from plan" in lines


def test_a_port_rule_removed(tmp_path: Path) -> None:
    root = _copy(tmp_path, "production")

    def drop(data: dict) -> None:  # type: ignore[type-arg]
        ports = data["config"]["govops:systems"]["meetings"]["ports"]
        ports[:] = [p for p in ports if p["port"] != 10000]

    _edit_yaml(root / "infra/stacks/Pulumi.production-hue.yaml", drop)
    lines = _lines(_check(root, "production"))
    missing = [ln for ln in lines if "udp/10000" in ln]
    assert missing and all("missing from plan" in ln for ln in missing), lines
    assert any(
        ln.startswith("flow public → meetings front: 0.0.0.0/0 → hue-meetings") for ln in missing
    )


def test_a_dns_name_changed(tmp_path: Path) -> None:
    root = _copy(tmp_path, "production")

    def rename(data: dict) -> None:  # type: ignore[type-arg]
        data["config"]["govops:dnsZone"] = "gov.example.invalid"

    _edit_yaml(root / "infra/stacks/Pulumi.production-platform.yaml", rename)
    lines = _lines(_check(root, "production"))
    assert any(
        ln.startswith("DNS name hue-procedures.gov.example: expected by ")
        and ln.endswith("missing from plan (no DNS record)")
        for ln in lines
    ), lines


@pytest.mark.parametrize(
    ("env", "runbook", "expected"),
    [
        (
            "production",
            "cutover.yml",
            "DNS name hue-procedure.gov.example: expected by ",
        ),
        (
            "lab",
            "rehearsal.yml",
            "host name hue-procedure: expected by ",
        ),
    ],
)
def test_a_runbook_url_pointing_nowhere(
    tmp_path: Path, env: str, runbook: str, expected: str
) -> None:
    # Runbooks call operations; the URL is the adapter's: a vendor adapter whose base names
    # a host nobody builds.
    root = _copy(tmp_path, env)
    _vendor_adapter(root, env, base="https://{{ label }}-procedure{{ dot_domain }}")
    lines = _lines(_check(root, env))
    # One line for the name (the prober, through the same adapter, names it first) ...
    assert any(ln.startswith(expected) for ln in lines), lines
    # ... which the runbook's operations now call too.
    estate = load_estate(root / "inventories" / env / "estate.yml")
    calls = runbook_calls(root, estate, [root / "runbooks" / runbook], {"hue"})
    assert any(c.name.startswith("hue-procedure.") or c.name == "hue-procedure" for c in calls)


def _vendor_adapter(root: Path, env: str, base: str | None = None, drop: str = "") -> None:
    """The stand-in's procedures adapter as a vendor's, referenced from the estate."""
    from govops.adapters import standin_adapter_path

    data = yaml.safe_load(standin_adapter_path("systems", "procedures").read_text("utf-8"))
    data["vendor"] = "a vendor"
    if base:
        data["base"] = base
    data["operations"].pop(drop, None)
    folder = root / "inventories" / env
    (folder / "procedures-adapter.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
    _edit_yaml(
        folder / "estate.yml",
        lambda d: d["systems"]["procedures"].update(adapter="procedures-adapter.yml"),
    )


def test_an_operation_the_adapter_does_not_implement(tmp_path: Path) -> None:
    root = _copy(tmp_path, "lab")
    _vendor_adapter(root, "lab", drop="sync_status")
    lines = _lines(_check(root, "lab"))
    assert lines == [
        "operation procedures.sync_status: expected by runbook "
        "runbooks/rehearsal.yml:dossier_sync.verify; missing from the system's adapter "
        "(a vendor: systems.procedures)"
    ]


def test_a_playbook_group_the_inventory_lacks(tmp_path: Path) -> None:
    root = _copy(tmp_path, "lab")
    path = root / "playbooks/cutover/go_live.yml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("tier_app", "tier_ap"), encoding="utf-8"
    )
    lines = _lines(_check(root, "lab"))
    assert any(
        ln.startswith("group tier_ap: expected by runbook runbooks/rehearsal.yml:go_live")
        for ln in lines
    ), lines


def _cli(root: Path, env: str, *args: str) -> subprocess.CompletedProcess[str]:
    govops = Path(sys.executable).parent / "govops"
    return subprocess.run(
        [str(govops), "estate", "check", "--env", env, *args],
        cwd=root,
        env={**os.environ, "GOVOPS_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_exit_codes(tmp_path: Path) -> None:
    root = _copy(tmp_path, "lab")
    ok = _cli(root, "lab", "--province", "hue")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "agrees" in ok.stdout
    hosts = root / "inventories/lab/hosts.yml"
    hosts.write_text(
        hosts.read_text(encoding="utf-8").replace("hue-db:", "hue-dbx:"), encoding="utf-8"
    )
    bad = _cli(root, "lab", "--province", "hue")
    assert bad.returncode == 1
    assert "host hue-db (10.213.46.138): expected by registry; missing from inventory" in bad.stdout
    unknown = _cli(root, "lab", "--province", "atlantis")
    assert unknown.returncode == 2
    assert "--province: expected a province of the lab estate, got 'atlantis'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    estate = root / "inventories/lab/estate.yml"
    estate.write_text(estate.read_text(encoding="utf-8").replace("rehearsal.yml", "rehersal.yml"))
    missing = _cli(root, "lab")
    assert missing.returncode == 2
    assert "estate.yml: runbooks[0]: expected a runbook file, got 'runbooks/rehersal.yml'" in (
        missing.stderr.replace("\n", "")
    )


def test_the_runbook_engine_needs_the_fronts_it_calls(tmp_path: Path) -> None:
    """The cutover engine runs on the operators' controller: without their range in the
    province's flows, the documents front (open to the province only) refuses its steps."""
    root = _copy(tmp_path, "production")

    def drop(data: dict) -> None:  # type: ignore[type-arg]
        del data["config"]["govops:mgmt"]["operators"]

    _edit_yaml(root / "infra/stacks/Pulumi.production-hue.yaml", drop)
    lines = _lines(_check(root, "production"))
    assert any(
        ln.startswith(
            "flow runbook engine calls hue-documents.gov.example: 172.16.0.0/16 → hue-documents "
            "tcp/443: expected by runbook; missing from plan"
        )
        for ln in lines
    ), lines
