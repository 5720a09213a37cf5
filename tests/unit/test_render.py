"""Rendering: deterministic, complete, drift detected, inventory valid for Ansible."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from govops.registry import load_estate
from govops.render import drift, render, write

from .conftest import ROOT


@pytest.fixture(scope="module")
def prod_files() -> dict[str, str]:
    return render(load_estate(ROOT / "inventories/production/estate.yml"))


@pytest.fixture(scope="module")
def lab_files() -> dict[str, str]:
    return render(load_estate(ROOT / "inventories/lab/estate.yml"))


def test_same_input_gives_byte_identical_output(prod_files: dict[str, str]) -> None:
    again = render(load_estate(ROOT / "inventories/production/estate.yml"))
    assert again == prod_files


def test_committed_tree_has_no_drift(prod_files: dict[str, str], lab_files: dict[str, str]) -> None:
    assert drift(ROOT, "production", prod_files).clean
    assert drift(ROOT, "lab", lab_files).clean


def test_one_pulumi_stack_per_province_plus_platform(prod_files: dict[str, str]) -> None:
    stacks = [p for p in prod_files if p.startswith("infra/stacks/")]
    assert len(stacks) == 35
    hue = yaml.safe_load(prod_files["infra/stacks/Pulumi.production-hue.yaml"])["config"]
    assert hue["govops:province"]["codename"] == "hue"
    assert hue["govops:province"]["communes"] == 40
    assert hue["openstack:region"] == "RegionCentral"
    assert hue["govops:platformStack"] == "organization/govops/production-platform"
    assert len(hue["govops:systems"]["procedures"]["hosts"]) == 2
    # The lab is podman, not a cloud: no stacks.


def test_lab_has_topology_and_no_stacks(lab_files: dict[str, str]) -> None:
    assert not any(p.startswith("infra/") for p in lab_files)
    topo = yaml.safe_load(lab_files["inventories/lab/topology.yml"])
    assert topo["network"] == {
        "name": "govops-lab",
        "subnet": "10.213.0.0/16",
        "gateway": "10.213.0.1",
    }
    names = [h["name"] for h in topo["hosts"]]
    assert {"hue-procedures", "hue-db", "monitor", "national-portal"} <= set(names)
    # 34 provinces × 7 (five systems, db, db-standby), monitor, 4 counterparts, dns, backup-lab,
    # 29 legacy dbs
    assert len(names) == 274


def test_prometheus_targets_carry_registry_labels(prod_files: dict[str, str]) -> None:
    https = json.loads(prod_files["inventories/production/prometheus/blackbox_https.json"])
    hue = [t for t in https if t["labels"].get("province") == "hue"]
    assert {t["labels"]["system"] for t in hue} == {
        "procedures",
        "documents",
        "lgsp",
        "reporting",
        "meetings",
    }
    lgsp = next(t for t in hue if t["labels"]["system"] == "lgsp")
    assert lgsp["labels"]["tier"] == "gateway"
    assert lgsp["targets"][0].startswith("https://hue-lgsp-1.gov.example/")
    node = json.loads(prod_files["inventories/production/prometheus/node.json"])
    assert len(node) == len(load_estate(ROOT / "inventories/production/estate.yml").hosts())
    pg = json.loads(prod_files["inventories/production/prometheus/postgres.json"])
    assert len(pg) == 68  # each province's primary and standby
    assert {t["labels"]["host"] for t in pg if t["labels"]["province"] == "hue"} == {
        "hue-db",
        "hue-db-standby",
    }


def test_check_reports_changed_missing_and_stale(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "inventories/lab", tmp_path / "inventories/lab")
    estate = load_estate(tmp_path / "inventories/lab/estate.yml")
    files = render(estate)
    assert drift(tmp_path, "lab", files).clean
    (tmp_path / "inventories/lab/hosts.yml").write_text("all: {}\n")
    (tmp_path / "inventories/lab/prometheus/node.json").unlink()
    stale = tmp_path / "inventories/lab/group_vars/province_atlantis/province.yml"
    stale.parent.mkdir()
    stale.write_text("# Rendered by `govops render --env lab` from an older estate\n{}\n")
    vault = tmp_path / "inventories/lab/group_vars/all/vault.yml"
    vault.write_text("secret: hand-made\n")
    result = drift(tmp_path, "lab", files)
    assert result.changed == ["inventories/lab/hosts.yml"]
    assert result.added == ["inventories/lab/prometheus/node.json"]
    assert result.stale == ["inventories/lab/group_vars/province_atlantis/province.yml"]
    assert "-all: {}" in result.diff
    write(tmp_path, "lab", files)
    assert drift(tmp_path, "lab", files).clean
    assert vault.exists(), "hand-written files beside rendered ones are left alone"


# Production's example Vault files are encrypted with this documented throwaway password
# (README, Secrets); the lab has no vault.
EXAMPLE_VAULT = {"ANSIBLE_VAULT_PASSWORD_FILE": "inventories/production/vault-password.example"}


def _ansible(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / tool), *args],
        cwd=ROOT,
        env={**os.environ, **EXAMPLE_VAULT},
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.mark.parametrize("env", ["lab", "production"])
def test_inventory_passes_ansible_inventory(env: str) -> None:
    out = _ansible("ansible-inventory", "-i", f"inventories/{env}", "--list")
    assert "WARNING" not in out.stderr, out.stderr
    inv = json.loads(out.stdout)
    hostvars = inv["_meta"]["hostvars"]
    assert "hue-db" in hostvars or "hue-db.gov.example" in hostvars or "hue-db" in str(inv)
    assert "province_hue" in inv and "system_lgsp" in inv and "tier_db" in inv
    hue_vars = hostvars[next(h for h in hostvars if h.startswith("hue-procedures"))]
    assert hue_vars["govops_province"]["codename"] == "hue"
    assert len(hue_vars["govops_province"]["communes"]) == 40
    assert hue_vars["govops_system_id"] == "procedures"
    if env == "production":
        # The example vault decrypts; SSH goes through the province's bastion.
        assert set(hue_vars["govops_db_passwords"]) >= {"procedures", "lgsp"}
        assert "BEGIN CERTIFICATE" in hue_vars["govops_tls_ca_pem"]
        assert hue_vars["govops_jump_host"] == "hue-bastion.gov.example"
        assert "govops_jump_host" not in hostvars["hue-bastion"]
        assert "national" not in str(inv.get("national", {}).get("hosts", []))


@pytest.mark.parametrize("env", ["lab", "production"])
def test_site_playbook_passes_syntax_check(env: str) -> None:
    out = _ansible(
        "ansible-playbook", "-i", f"inventories/{env}", "playbooks/site.yml", "--syntax-check"
    )
    assert "WARNING" not in out.stderr, out.stderr


def test_production_places_no_stand_in_on_national_hosts() -> None:
    """playbooks/national.yml installs the counterparts' stand-ins: production has none."""
    out = _ansible(
        "ansible-playbook", "-i", "inventories/production", "playbooks/site.yml", "--list-hosts"
    ).stdout
    play = out[out.index("Tier national") :]
    assert play.split("hosts (", 1)[1].startswith("0)"), play[:300]
    assert "national-portal" not in out


@pytest.mark.parametrize("env", ["production", "lab"])
def test_the_host_index_agrees_with_the_inventory(env: str) -> None:
    """govops_hosts (what roles read of other hosts, issue 19) says what hostvars would."""
    inventory = ROOT / "inventories" / env
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text(encoding="utf-8"))["all"]
    index = hosts["vars"]["govops_hosts"]
    assert set(index) == set(hosts["hosts"])
    members = {
        name: set(group.get("hosts") or {})
        for name, group in hosts["children"].items()
        if isinstance(group, dict)
    }
    for name, entry in index.items():
        assert entry["inventory_hostname"] == name
        assert entry["ansible_host"] == hosts["hosts"][name]["ansible_host"]
        system = entry.get("govops_system_id")
        assert system is None or name in members[f"system_{system}"]
        if "govops_province" in entry:
            code = entry["govops_province"]["codename"]
            province = yaml.safe_load(
                (inventory / "group_vars" / f"province_{code}" / "province.yml").read_text(
                    encoding="utf-8"
                )
            )["govops_province"]
            assert name in members[f"province_{code}"]
            assert entry["govops_province"] == {k: province[k] for k in entry["govops_province"]}


@pytest.mark.parametrize("env", ["production", "lab"])
def test_the_lab_gateway_is_rendered_plain_and_only_for_a_lab(env: str) -> None:
    """The controller's address on the lab network, as data (issue 19): the lab's group_vars
    once parsed topology.yml for it in every task that opened the firewall to the controller."""
    inventory = ROOT / "inventories" / env
    all_vars = yaml.safe_load((inventory / "hosts.yml").read_text(encoding="utf-8"))["all"]["vars"]
    if env == "production":
        assert "govops_lab_gateway" not in all_vars
        return
    topology = yaml.safe_load((inventory / "topology.yml").read_text(encoding="utf-8"))
    assert all_vars["govops_lab_gateway"] == topology["network"]["gateway"]
    assert all_vars["govops_lab_gateway"] != "" and "topology.yml" not in (
        inventory / "group_vars" / "all" / "lab.yml"
    ).read_text(encoding="utf-8")
