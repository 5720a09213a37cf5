"""The Pulumi program under mocks: all 34 provinces × 5 systems, checked on what the mocks
recorded (inputs as the engine would see them), never on the program's own variables."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from ipaddress import ip_address, ip_network
from itertools import pairwise

import pytest
from pulumi.runtime import rpc

from infra.estate.config import parse_platform, parse_province
from infra.estate.labels import LABEL_FIELDS, UNLABELLED, labels_in
from infra.mocks import Registration

from .conftest import ROOT
from .infra_support import (
    of_type,
    production_runs,
    production_stacks,
    reset_pulumi,
    run_config,
    stack_config,
)

SYSTEMS = ("procedures", "documents", "lgsp", "reporting", "meetings")
FLAVORS = ("g1.medium", "g1.large", "g1.xlarge", "g1.2xlarge")


@pytest.fixture(autouse=True)
def _fresh_pulumi() -> Iterator[None]:
    reset_pulumi()
    yield
    reset_pulumi()


def province_runs() -> dict[str, list[Registration]]:
    """Codename → what its stack registered."""
    return {
        s.province.codename: production_runs()[s.stack].registrations
        for s in production_stacks()
        if s.province is not None
    }


def test_all_34_provinces_with_5_systems_each() -> None:
    runs = province_runs()
    assert len(runs) == 34
    for codename, regs in runs.items():
        label = codename.replace("_", "-")
        assert [r.name for r in of_type(regs, "ProvinceEstate")] == [label]
        tiers = sorted(r.name for r in of_type(regs, "SystemTier"))
        assert tiers == sorted(f"{label}-{s}" for s in (*SYSTEMS, "db", "bastion")), codename


def test_instances_sit_at_the_inventory_addresses() -> None:
    for s in production_stacks():
        if s.province is None:
            continue
        run = production_runs()[s.stack]
        want = {h.name: str(h.ip) for sys_ in s.province.systems.values() for h in sys_.hosts}
        want |= {h.name: str(h.ip) for h in s.province.db.hosts}  # the primary and standby
        assert s.province.mgmt is not None and s.province.mgmt.bastion is not None
        want[s.province.mgmt.bastion.name] = str(s.province.mgmt.bastion.ip)
        got = {
            r.inputs["name"]: r.inputs["networks"][0]["fixedIpV4"]
            for r in of_type(run.registrations, "Instance")
        }
        assert got == want
        assert run.outputs["hosts"] == want  # what `pulumi stack output` gives Ansible


def _rules(regs: list[Registration]) -> list[tuple[str, int, str, str]]:
    """(security group, port, protocol, source) of every ingress rule."""
    groups = {f"{r.name}-id": r.name for r in of_type(regs, "SecGroup")}
    return [
        (
            groups[r.inputs["securityGroupId"]],
            int(r.inputs["portRangeMin"]),
            r.inputs["protocol"],
            r.inputs["remoteIpPrefix"],
        )
        for r in of_type(regs, "SecGroupRule")
    ]


def test_public_ingress_only_on_edge_tiers_never_ssh_or_db() -> None:
    for codename, regs in province_runs().items():
        for group, port, _, source in _rules(regs):
            if source == "0.0.0.0/0":
                assert group.endswith(("-front", "-gateway")), (codename, group)
                assert port not in (22, 5432), (codename, group)


def test_db_only_from_the_app_subnet_and_its_peer_and_ssh_only_through_the_bastion() -> None:
    for s in production_stacks():
        if s.province is None:
            continue
        label, net, mgmt = s.province.label, s.province.network, s.province.mgmt
        assert mgmt is not None and mgmt.bastion is not None
        assert s.province.db.standby is not None and s.province.backup is not None
        rules = _rules(production_runs()[s.stack].registrations)
        # The systems' subnet, and each database host for the other (streaming replication).
        assert sorted(r for r in rules if r[1] == 5432) == [
            (f"{label}-db-db", 5432, "tcp", f"{s.province.db.host.ip}/32"),
            (f"{label}-db-db", 5432, "tcp", f"{s.province.db.standby.ip}/32"),
            (f"{label}-db-db", 5432, "tcp", str(net.subnets["app"])),
        ]
        # pgBackRest's TLS server: from the zone's backup host alone.
        assert [r for r in rules if r[1] == 8432] == [
            (f"{label}-db-db", 8432, "tcp", f"{s.province.backup.ip}/32")
        ]
        assert sorted(r for r in rules if r[1] == 22) == [
            (f"{label}-bastion-mgmt", 22, "tcp", "172.16.0.0/16"),  # the operators' VPN
            (f"{label}-ssh", 22, "tcp", f"{mgmt.bastion.ip}/32"),
        ]
        monitor = f"{mgmt.monitor.ip}/32"  # the zone's Prometheus
        assert (f"{label}-ssh", 9100, "tcp", monitor) in rules
        assert (f"{label}-db-db", 9187, "tcp", monitor) in rules
        assert (f"{label}-procedures-front", 9113, "tcp", monitor) in rules


def test_catalog_reach_becomes_the_rule_source() -> None:
    s = next(s for s in production_stacks() if s.stack == "production-hue")
    rules = set(_rules(production_runs()[s.stack].registrations))
    cidr = "10.46.0.0/16"
    assert ("hue-documents-front", 443, "tcp", cidr) in rules  # from: province
    assert ("hue-reporting-front", 443, "tcp", cidr) in rules
    assert ("hue-meetings-front", 10000, "udp", "0.0.0.0/0") in rules  # from: public
    assert ("hue-lgsp-gateway", 443, "tcp", "0.0.0.0/0") in rules
    # `local` ports (the app tier) have a group and no rule at all.
    assert not [r for r in rules if r[0].endswith("-app")]
    groups = {r.name for r in of_type(production_runs()[s.stack].registrations, "SecGroup")}
    assert {f"hue-{sid}-app" for sid in SYSTEMS} <= groups


def test_every_instance_gets_its_tier_groups_and_ssh() -> None:
    regs = province_runs()["hue"]
    groups = {r.inputs["name"]: r.inputs["securityGroups"] for r in of_type(regs, "Instance")}
    assert groups["hue-procedures-1"] == ["hue-procedures-front", "hue-procedures-app", "hue-ssh"]
    assert groups["hue-lgsp-2"] == ["hue-lgsp-gateway", "hue-lgsp-app", "hue-ssh"]
    assert groups["hue-db"] == ["hue-db-db", "hue-ssh"]
    assert groups["hue-db-standby"] == ["hue-db-db", "hue-ssh"]  # the data tier's, as its primary


def test_sizing_scales_with_communes() -> None:
    """More communes → at least as many instances and as big a flavor, from the mocks."""
    seen = []
    for s in production_stacks():
        if s.province is None:
            continue
        regs = production_runs()[s.stack].registrations
        procedures = [
            r for r in of_type(regs, "Instance") if r.inputs["metadata"]["system"] == "procedures"
        ]
        flavors = {r.inputs["flavorName"] for r in procedures}
        assert len(flavors) == 1
        seen.append((s.province.communes, len(procedures), FLAVORS.index(flavors.pop())))
    seen.sort()
    for (c1, n1, f1), (c2, n2, f2) in pairwise(seen):
        assert (n1, f1) <= (n2, f2) or c1 == c2, (c1, c2)
    hue, hcm = province_runs()["hue"], province_runs()["ho_chi_minh"]

    def size(regs: list[Registration], system: str) -> tuple[int, str]:
        found = [r for r in of_type(regs, "Instance") if r.inputs["metadata"]["system"] == system]
        return len(found), found[0].inputs["flavorName"]

    assert size(hue, "procedures") == (2, "g1.medium")
    assert size(hcm, "procedures") == (3, "g1.xlarge")
    assert size(hue, "meetings") == (1, "g1.large")
    assert size(hcm, "meetings") == (4, "g1.2xlarge")  # the estate's override


def test_volumes_take_size_and_encrypted_type_from_config() -> None:
    s = next(s for s in production_stacks() if s.stack == "production-hue")
    assert s.province is not None
    volumes = {
        r.name: r.inputs for r in of_type(production_runs()[s.stack].registrations, "Volume")
    }
    assert volumes["hue-procedures-1-data"]["size"] == s.province.systems["procedures"].volume_gb
    assert volumes["hue-db-data"]["size"] == s.province.db.volume_gb
    assert volumes["hue-db-standby-data"]["size"] == s.province.db.volume_gb  # its own
    assert {v["volumeType"] for v in volumes.values()} == {"encrypted"}


def test_load_balancers_for_public_fronts_only() -> None:
    regs = province_runs()["hue"]
    assert sorted(r.name for r in of_type(regs, "LoadBalancer")) == [
        "hue-lgsp",
        "hue-meetings",
        "hue-procedures",
    ]
    members = sorted(r.name for r in of_type(regs, "Member"))
    assert members == [
        "hue-lgsp-1-tcp-443",
        "hue-lgsp-2-tcp-443",
        "hue-meetings-tcp-443",
        "hue-meetings-udp-10000",
        "hue-procedures-1-tcp-443",
        "hue-procedures-2-tcp-443",
    ]
    monitors = {r.name: r.inputs for r in of_type(regs, "Monitor")}
    assert monitors["hue-procedures-tcp-443"]["type"] == "HTTPS"
    assert monitors["hue-procedures-tcp-443"]["urlPath"] == "/readyz"
    assert monitors["hue-meetings-udp-10000"]["type"] == "UDP-CONNECT"
    # The stack exports a private VIP and a public address per public front.
    outputs = production_runs()["production-hue"].outputs["vips"]
    assert sorted(outputs) == ["lgsp", "meetings", "procedures"]
    for addresses in outputs.values():
        assert ip_address(addresses["public"]) and ip_address(addresses["private"])


def test_dns_records_match_the_inventory_names() -> None:
    regs = province_runs()["hue"]
    records = {r.inputs["name"]: r.inputs["records"] for r in of_type(regs, "RecordSet")}
    assert records["hue-procedures-1.gov.example."] == ["10.46.64.10"]
    assert records["hue-db.gov.example."] == ["10.46.128.10"]
    assert records["hue-db-standby.gov.example."] == ["10.46.128.18"]
    assert "procedures.hue.gov.example." in records  # the public name, on the floating IP
    assert {r.inputs["zoneId"] for r in of_type(regs, "RecordSet")} == {"gov.example-id"}


def test_subnets_are_the_tiers_and_dhcp_stays_below_the_hosts() -> None:
    regs = province_runs()["hue"]
    subnets = {r.name: r.inputs for r in of_type(regs, "Subnet")}
    assert {k: v["cidr"] for k, v in subnets.items()} == {
        "hue-public": "10.46.0.0/18",
        "hue-app": "10.46.64.0/18",
        "hue-data": "10.46.128.0/18",
        "hue-mgmt": "10.46.192.0/18",
    }
    assert subnets["hue-app"]["allocationPools"] == [{"start": "10.46.64.2", "end": "10.46.64.9"}]
    assert all(ip_network(v["cidr"]).is_private for v in subnets.values())
    assert len(of_type(regs, "RouterInterface")) == 4


def test_every_resource_is_labelled() -> None:
    for stack, run in production_runs().items():
        by_urn = {r.urn: r for r in run.registrations}
        for r in run.registrations:
            if not r.custom:
                continue
            if r.type in UNLABELLED:
                continue
            assert r.type in LABEL_FIELDS, r.type
            for field in LABEL_FIELDS[r.type]:
                labels = labels_in(field, r.inputs.get(field))
                assert labels.get("environment") == "production", (stack, r.name, field)
                assert labels.get("tier"), (stack, r.name)
                owner = by_urn.get(r.parent)
                if owner is not None and owner.type.endswith("SystemTier"):
                    assert owner.name.endswith(f"-{labels['system']}"), (stack, r.name)
                if stack != "production-platform":
                    province = stack.removeprefix("production-")
                    assert labels["province"].replace("_", "-") == province, (stack, r.name)


def test_components_parent_their_resources() -> None:
    """parent=self everywhere (recorded by the monitor: request.parent)."""
    for stack, run in production_runs().items():
        if stack == "production-platform":
            continue
        by_urn = {r.urn: r for r in run.registrations}
        for r in run.registrations:
            parent = by_urn.get(r.parent)
            if r.type.endswith("ProvinceEstate"):
                assert parent is None  # a child of the stack itself
            elif r.type.endswith("SystemTier"):
                assert parent is not None and parent.type.endswith("ProvinceEstate")
            else:
                assert parent is not None and parent.type.startswith("govops:estate:"), r.name


def test_db_password_is_a_required_secret() -> None:
    config = stack_config("production-hue")
    del config["govops:dbAdminPassword"]
    with pytest.raises(Exception, match="dbAdminPassword"):
        run_config(config)
    run = run_config(stack_config("production-hue"))
    (db,) = [r for r in of_type(run.registrations, "Instance") if r.name == "hue-db"]
    user_data = db.inputs["userData"]
    assert user_data[rpc._special_sig_key] == rpc._special_secret_sig  # sealed in the state
    assert 'content: "test-password"' in user_data["value"]


def test_platform_stack_owns_the_parent_zone() -> None:
    run = production_runs()["production-platform"]
    zones = [r.inputs["name"] for r in of_type(run.registrations, "Zone")]
    assert zones == ["gov.example."]
    # Its own hosts: the national Prometheus, each zone's, the national bastion; no
    # counterpart (production does not host them).
    instances = {r.inputs["name"] for r in of_type(run.registrations, "Instance")}
    assert instances == {
        "monitor",
        "monitor-dc-north",
        "monitor-dc-central",
        "monitor-dc-south",
        "backup-dc-north",
        "backup-dc-central",
        "backup-dc-south",
        "bastion",
    }
    records = {r.inputs["name"] for r in of_type(run.registrations, "RecordSet")}
    assert "monitor-dc-central.gov.example." in records
    assert run.outputs["dnsZoneName"] == "gov.example"
    assert run.outputs["image"] == "debian-12-govops"
    assert set(run.outputs["counterparts"]) >= {"portal", "docaxis", "ndxp"}


def test_a_replicated_system_answers_at_its_service_name() -> None:
    """`hue-procedures.gov.example`, which the prober and the runbooks call: the load
    balancer's VIP; a system without one answers on every replica's address."""
    regs = production_runs()["production-ho-chi-minh"].registrations
    records = {r.name: r.inputs for r in of_type(regs, "RecordSet")}
    assert records["ho-chi-minh-procedures-service"]["records"][0].startswith("198.18.")
    documents = records["ho-chi-minh-documents-service"]
    assert documents["name"] == "ho-chi-minh-documents.gov.example."
    assert len(documents["records"]) == 2


def test_program_modules_import_without_side_effects() -> None:
    code = "import infra.estate.program, infra.policy.pack, infra.runner; print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_bad_stack_config_stops_the_program_naming_file_and_key() -> None:
    config = stack_config("production-hue")
    config["govops:systems"]["lgsp"]["edgeTier"] = "edge"
    with pytest.raises(
        Exception, match=r"Pulumi\.production-hue\.yaml: config\.govops:systems\.lgsp\.edgeTier"
    ):
        run_config(config)
    assert parse_province(stack_config("production-hue"), "x").label == "hue"


def test_the_standby_beside_the_primary_on_another_hypervisor() -> None:
    """Same flavor, its own volume, the data subnet, the same user data (the admin password
    is needed after a promotion), and a server group with the anti-affinity policy."""
    for s in production_stacks():
        if s.province is None:
            continue
        regs = production_runs()[s.stack].registrations
        label, db = s.province.label, s.province.db
        instances = {
            r.name: r.inputs
            for r in of_type(regs, "Instance")
            if r.inputs["metadata"]["system"] == "db"
        }
        assert sorted(instances) == [f"{label}-db", f"{label}-db-standby"], s.stack
        (group,) = of_type(regs, "ServerGroup")
        assert group.name == f"{label}-db-anti-affinity"
        assert group.inputs["policies"] == "anti-affinity"
        for inputs in instances.values():
            assert inputs["flavorName"] == db.flavor
            assert inputs["schedulerHints"] == [{"group": f"{group.name}-id"}]
            assert (
                ip_address(inputs["networks"][0]["fixedIpV4"]) in s.province.network.subnets["data"]
            )
        # No other instance is pinned: replicas of the systems are not in a server group.
        assert not [
            r
            for r in of_type(regs, "Instance")
            if r.inputs.get("schedulerHints") and r.name not in instances
        ]
        # The database has no service name: which host is primary is the data's fact.
        names = [r.inputs["name"] for r in of_type(regs, "RecordSet")]
        assert names.count(f"{label}-db.gov.example.") == 1, s.stack


def test_each_zone_has_a_backup_host_with_its_encrypted_volume() -> None:
    platform = next(s for s in production_stacks() if s.stack == "production-platform")
    national = parse_platform(platform.config, platform.rel).national
    assert national is not None
    regs = production_runs()["production-platform"].registrations
    zones = {s.province.zone for s in production_stacks() if s.province is not None}
    instances = {r.name: r.inputs for r in of_type(regs, "Instance")}
    volumes = {r.name: r.inputs for r in of_type(regs, "Volume")}
    attached = {r.name for r in of_type(regs, "VolumeAttach")}
    for zone in zones:
        name = f"backup-{zone}"
        assert instances[name]["metadata"] == {
            "province": "national",
            "system": "backup",
            "tier": "backup",
            "environment": "production",
            "zone": zone,
        }
        host = next(h for h in national.hosts if h.name == name)
        assert instances[name]["networks"][0]["fixedIpV4"] == str(host.ip)
        assert ip_address(str(host.ip)) in national.cidr
        # Twice the sum of the zone's database volumes (the estate may override it).
        want = 2 * sum(
            s.province.db.volume_gb
            for s in production_stacks()
            if s.province is not None and s.province.zone == zone
        )
        assert volumes[f"{name}-data"]["size"] == want == host.volume_gb
        assert volumes[f"{name}-data"]["volumeType"] == "encrypted"
        assert f"{name}-data" in attached
        # Each province of the zone names this host as its backup host.
        for s in production_stacks():
            if s.province is not None and s.province.zone == zone:
                assert s.province.backup is not None and s.province.backup.name == name
    assert set(volumes) == {f"backup-{z}-data" for z in zones}  # no other platform volume


def test_no_rule_opens_replication_or_pgbackrest_wider_than_one_host() -> None:
    """5432 beyond the app subnet and 8432 anywhere: /32s of the estate's own hosts only."""
    platform = next(s for s in production_stacks() if s.stack == "production-platform")
    national = parse_platform(platform.config, platform.rel).national
    assert national is not None
    backups = {f"{h.ip}/32" for h in national.hosts if h.role == "backup"}
    db_hosts: set[str] = set()
    for s in production_stacks():
        if s.province is None:
            continue
        db_hosts |= {f"{h.ip}/32" for h in s.province.db.hosts}
        for group, port, _, source in _rules(production_runs()[s.stack].registrations):
            if port == 8432:
                assert source in backups, (s.stack, group, source)
            if port == 5432 and source != str(s.province.network.subnets["app"]):
                assert source in {f"{h.ip}/32" for h in s.province.db.hosts}, (s.stack, source)
    for group, port, _, source in _rules(production_runs()["production-platform"].registrations):
        assert port != 5432, group
        if port == 8432:
            assert group.startswith("backup-") and source in db_hosts, (group, source)
