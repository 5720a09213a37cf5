"""Stack config → specs and rules: every mistake names the file and the key."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

import pytest

from infra.estate.config import StackConfigError, parse_platform, parse_province, role_of
from infra.estate.rules import (
    ANYWHERE,
    db_rules,
    platform_flows,
    province_flows,
    ssh_rules,
    system_rules,
)

from .infra_support import stack_config

HUE = "infra/stacks/Pulumi.production-hue.yaml"


def hue() -> dict[str, Any]:
    return stack_config("production-hue")


def test_hue_parses_into_the_rendered_values() -> None:
    spec = parse_province(hue(), HUE)
    assert (spec.codename, spec.label, spec.communes) == ("hue", "hue", 40)
    assert spec.network.subnets["app"] == IPv4Network("10.46.64.0/18")
    assert [h.name for h in spec.systems["procedures"].hosts] == [
        "hue-procedures-1",
        "hue-procedures-2",
    ]
    assert spec.db.host.name == "hue-db" and spec.volume_type == "encrypted"
    assert spec.systems["meetings"].public_ports[1].protocol == "udp"
    assert role_of(hue(), HUE) == "province"


def test_multi_word_province_gets_a_dns_label() -> None:
    spec = parse_province(stack_config("production-ho-chi-minh"), "x.yaml")
    assert spec.codename == "ho_chi_minh" and spec.label == "ho-chi-minh"


def _set(config: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = config
    for part in path[:-1]:
        node = node[part]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "key", "expected"),
    [
        (
            ("govops:systems", "procedures", "ports", 0, "from"),
            "everyone",
            "config.govops:systems.procedures.ports[0].from",
            "one of public, province, national, local",
        ),
        (
            ("govops:systems", "procedures", "ports", 1, "from"),
            "public",
            "config.govops:systems.procedures.ports[1].from",
            "public only on the edge tier 'front'",
        ),
        (
            ("govops:network", "subnets", "mgmt"),
            KeyError,
            "config.govops:network.subnets.mgmt",
            "a subnet (required key is missing)",
        ),
        (
            ("govops:network", "subnets", "data"),
            "10.47.128.0/18",
            "config.govops:network.subnets.data",
            "a range inside the network 10.46.0.0/16",
        ),
        (
            ("govops:systems", "lgsp", "hosts", 0, "ip"),
            "10.46.128.99",
            "config.govops:systems.lgsp.hosts[0].ip",
            "an address in the subnet 10.46.64.0/18",
        ),
        (
            ("govops:province", "communes"),
            "forty",
            "config.govops:province.communes",
            "an integer from 1 to 10000",
        ),
        (
            ("govops:db", "volumeGb"),
            KeyError,
            "config.govops:db.volumeGb",
            "a value (required key is missing)",
        ),
        (("govops:volumeEncryption",), "yes", "config.govops:volumeEncryption", "true or false"),
        (
            ("govops:systems", "documents", "readiness"),
            "readyz",
            "config.govops:systems.documents.readiness",
            "an HTTP path starting with /",
        ),
    ],
)
def test_a_wrong_value_names_file_and_key(
    path: tuple[str | int, ...], value: Any, key: str, expected: str
) -> None:
    config = hue()
    _set(config, path, value)
    with pytest.raises(StackConfigError) as err:
        parse_province(config, HUE)
    assert err.value.source == HUE
    assert str(err.value).startswith(f"{HUE}: {key}: expected {expected}")


def test_unknown_role_and_platform_key() -> None:
    with pytest.raises(StackConfigError, match=r"config\.govops:role: expected one of platform"):
        role_of({"govops:role": "nation"}, HUE)
    platform = stack_config("production-platform")
    with pytest.raises(StackConfigError, match=r"config\.govops:sshPublicKey: expected a value"):
        parse_platform(platform, "p.yaml")
    platform["govops:sshPublicKey"] = "not a key"
    with pytest.raises(StackConfigError, match="an OpenSSH public key"):
        parse_platform(platform, "p.yaml")


def test_rules_follow_the_catalog_reach() -> None:
    spec = parse_province(hue(), HUE)
    net = spec.network
    procedures = system_rules(spec.systems["procedures"], net)
    assert [(r.port, r.cidr) for r in procedures["front"]] == [(443, ANYWHERE)]
    assert procedures["app"] == []  # `local`: no rule at all
    documents = system_rules(spec.systems["documents"], net)
    assert [(r.port, r.cidr) for r in documents["front"]] == [(443, "10.46.0.0/16")]
    lgsp = system_rules(spec.systems["lgsp"], net)
    assert [(r.tier, r.cidr) for r in lgsp["gateway"]] == [("gateway", ANYWHERE)]
    meetings = system_rules(spec.systems["meetings"], net)
    assert [(r.protocol, r.port) for r in meetings["front"]] == [("tcp", 443), ("udp", 10000)]
    assert [(r.port, r.cidr) for r in db_rules(net)] == [(5432, "10.46.64.0/18")]
    assert [(r.port, r.cidr) for r in ssh_rules(net)] == [(22, "10.46.192.0/18")]


def test_national_reach_opens_to_the_national_range() -> None:
    config = hue()
    config["govops:systems"]["reporting"]["ports"][0]["from"] = "national"
    spec = parse_province(config, HUE)
    rules = system_rules(spec.systems["reporting"], spec.network)
    assert [(r.port, r.cidr, r.reach) for r in rules["front"]] == [(443, "10.0.0.0/16", "national")]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("govops:mgmt", "bastion", "ip"),
            "10.46.64.10",
            "config.govops:mgmt.bastion.ip: expected an address in the subnet 10.46.192.0/18",
        ),
        (
            ("govops:mgmt", "monitor", "ip"),
            "8.8.8.8",
            "config.govops:mgmt.monitor.ip: expected a private address",
        ),
        (
            ("govops:mgmt", "operators"),
            "nowhere",
            "config.govops:mgmt.operators: expected an IPv4 network in CIDR form",
        ),
    ],
)
def test_a_bad_mgmt_value_names_its_key(
    path: tuple[str | int, ...], value: Any, message: str
) -> None:
    config = hue()
    _set(config, path, value)
    with pytest.raises(StackConfigError) as caught:
        parse_province(config, HUE)
    assert message in str(caught.value)


def test_the_flow_table_names_every_rule_of_the_province() -> None:
    spec = parse_province(hue(), HUE)
    table = province_flows(spec)
    assert table["hue-ssh-tcp-22-bastion"].cidr == "10.46.192.10/32"
    assert table["hue-ssh-tcp-9100-monitor"].cidr == "10.0.32.10/32"  # dc-central's Prometheus
    assert table["hue-bastion-mgmt-tcp-22-operators"].cidr == "172.16.0.0/16"
    assert table["hue-documents-front-tcp-443-operators"].cidr == "172.16.0.0/16"
    assert not [n for n in table if n.startswith("hue-procedures-app")]  # loopback only
    platform_config = stack_config("production-platform")
    platform_config["govops:sshPublicKey"] = "ssh-ed25519 AAAAtest operators"
    national = parse_platform(platform_config, "p.yaml").national
    assert national is not None
    platform = platform_flows(national)
    assert platform["monitor-dc-north-tcp-9090-federation"].cidr == "10.0.0.10/32"
    assert platform["bastion-tcp-22-operators"].cidr == "172.16.0.0/16"
    assert "monitor-dc-north-tcp-22-bastion" in platform


def test_the_database_pair_and_its_backup_host_parse_and_make_their_flows() -> None:
    spec = parse_province(hue(), HUE)
    assert [(h.name, str(h.ip)) for h in spec.db.hosts] == [
        ("hue-db", "10.46.128.10"),
        ("hue-db-standby", "10.46.128.18"),  # data subnet + 18
    ]
    assert spec.backup is not None and spec.backup.name == "backup-dc-central"
    rules = db_rules(spec.network, spec.mgmt, spec.db, spec.backup)
    assert [(r.port, r.cidr, r.reach) for r in rules] == [
        (5432, "10.46.64.0/18", "app"),
        (5432, "10.46.128.10/32", "primary"),  # replication, whichever is primary
        (5432, "10.46.128.18/32", "standby"),
        (9187, "10.0.32.10/32", "monitor"),
        (8432, f"{spec.backup.ip}/32", "backup"),  # the zone's backup host → pgBackRest
    ]
    table = province_flows(spec)
    assert table["hue-db-db-tcp-8432-backup"].cidr == f"{spec.backup.ip}/32"
    assert table["hue-db-db-tcp-5432-standby"].cidr == "10.46.128.18/32"
    # Without a standby or a backup host (an older stack file): the primary's rules alone.
    assert [r.port for r in db_rules(spec.network)] == [5432]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("govops:db", "standby", "ip"),
            "10.46.64.18",
            "config.govops:db.standby.ip: expected an address in the subnet 10.46.128.0/18",
        ),
        (
            ("govops:db", "standby", "ip"),
            "10.46.128.10",
            "config.govops:db.standby.ip: expected an address other than the primary's",
        ),
        (
            ("govops:backup", "ip"),
            "8.8.4.4",
            "config.govops:backup.ip: expected a private address",
        ),
    ],
)
def test_a_bad_standby_or_backup_value_names_its_key(
    path: tuple[str | int, ...], value: Any, message: str
) -> None:
    config = hue()
    _set(config, path, value)
    with pytest.raises(StackConfigError) as caught:
        parse_province(config, HUE)
    assert message in str(caught.value)


def _platform() -> dict[str, Any]:
    config = stack_config("production-platform")
    config["govops:sshPublicKey"] = "ssh-ed25519 AAAAtest operators"
    return config


def test_backup_hosts_admit_their_zones_databases_and_monitor_only() -> None:
    spec = parse_platform(_platform(), "p.yaml")
    assert spec.national is not None and spec.volume_type == "encrypted"
    backups = {str(h.zone): h for h in spec.national.hosts if h.role == "backup"}
    assert sorted(backups) == ["dc-central", "dc-north", "dc-south"]
    central = backups["dc-central"]
    assert central.name == "backup-dc-central" and central.volume_gb is not None
    clients = {c.name for c in central.clients}
    assert {"hue-db", "hue-db-standby", "da-nang-db", "da-nang-db-standby"} <= clients
    assert "ha-noi-db" not in clients  # dc-north's
    flows = platform_flows(spec.national)
    mine = {n: r for n, r in flows.items() if n.startswith("backup-dc-central-")}
    assert mine["backup-dc-central-tcp-8432-hue-db-standby"].cidr == "10.46.128.18/32"
    # node_exporter from its own zone's Prometheus only; SSH from the national bastion.
    assert [r.cidr for r in mine.values() if r.port == 9100] == ["10.0.32.10/32"]
    assert [r.cidr for r in mine.values() if r.port == 22] == ["10.0.0.30/32"]
    # Every 8432 rule is one database host of the zone: nothing wider, nothing else.
    assert {r.cidr for r in mine.values() if r.port == 8432} == {
        f"{c.ip}/32" for c in central.clients
    }
    assert {r.port for r in mine.values()} == {22, 9100, 8432}


def test_a_backup_host_needs_its_zone_and_volume() -> None:
    config = _platform()
    host = next(h for h in config["govops:national"]["hosts"] if h["role"] == "backup")
    del host["volumeGb"]
    with pytest.raises(StackConfigError, match=r"hosts\[\d+\]\.volumeGb: expected a value"):
        parse_platform(config, "p.yaml")
    del host["zone"]
    with pytest.raises(StackConfigError, match=r"hosts\[\d+\]\.zone: expected the zone"):
        parse_platform(config, "p.yaml")
