"""Estate files: resolution, and clear errors for every kind of bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from govops.errors import InputError
from govops.registry import load_estate
from govops.registry.estate import dns_label

from .conftest import ROOT, estate_data


def test_shipped_estates_resolve() -> None:
    lab = load_estate(ROOT / "inventories/lab/estate.yml")
    prod = load_estate(ROOT / "inventories/production/estate.yml")
    assert len(lab.provinces) == len(prod.provinces) == 34
    assert lab.lab is not None and "hue" in lab.lab.default_provinces
    # Lab: one host per system, a db and its standby per province; + monitor, 4 counterparts,
    # dns, the zone's backup host, and a legacy source per old province merged into another
    # (63 old provinces, 34 kept a successor of their own).
    assert len(lab.hosts()) == 34 * 7 + 7 + (63 - 34)
    standby = {h.name: h for h in lab.hosts() if "db_standbys" in h.groups}
    assert str(standby["hue-db-standby"].ip) == "10.213.46.146"
    assert "tier_db" in standby["hue-db-standby"].groups
    backups = [h for h in prod.hosts() if "backup_repositories" in h.groups]
    assert sorted(h.name for h in backups) == [
        "backup-dc-central",
        "backup-dc-north",
        "backup-dc-south",
    ]
    assert {h.zone for h in backups} == set(prod.zones)
    assert [str(h.ip) for h in lab.hosts() if h.name == "backup-lab"] == ["10.213.0.22"]
    legacy = {h.name: h.province for h in lab.hosts() if "legacy_sources" in h.groups}
    assert legacy["legacy-ha-giang-db"] == "tuyen_quang"
    assert legacy["legacy-ba-ria-vung-tau-db"] == "ho_chi_minh"
    assert not [h for h in prod.hosts() if "legacy_sources" in h.groups]
    assert prod.provinces["hue"].zone == "dc-central"
    assert str(prod.provinces["hue"].network) == "10.46.0.0/16"
    assert prod.provinces["ho_chi_minh"].sizes["db"].flavor == "g1.2xlarge"


def test_host_names_are_dns_labels_and_addresses_unique() -> None:
    for env in ("lab", "production"):
        estate = load_estate(ROOT / f"inventories/{env}/estate.yml")
        hosts = estate.hosts()
        assert len({h.name for h in hosts}) == len(hosts)
        assert len({h.ip for h in hosts}) == len(hosts)
        for h in hosts:
            assert "_" not in h.name
            if h.province:
                pe = estate.provinces[h.province]
                assert h.ip in pe.network
                prefix = "legacy" if "legacy_sources" in h.groups else dns_label(h.province)
                assert h.name.startswith(prefix + "-")
            else:
                assert h.ip in estate.network.national


def test_province_subset_keeps_code_order(write_estate: Callable[..., Path]) -> None:
    data = estate_data()
    data["provinces"] = ["ho_chi_minh", "hue", "tuyen_quang"]
    estate = load_estate(write_estate(data))
    assert list(estate.provinces) == ["tuyen_quang", "hue", "ho_chi_minh"]


def _error(write_estate: Callable[..., Path], data: dict[str, object] | str) -> str:
    with pytest.raises(InputError) as info:
        load_estate(write_estate(data))
    assert info.value.exit_code == 2
    return str(info.value)


def test_unknown_province_names_file_line_and_key(write_estate: Callable[..., Path]) -> None:
    data = estate_data()
    data["provinces"] = ["hue", "atlantis"]
    message = _error(write_estate, data)
    assert "inventories/lab/estate.yml:" in message
    assert "provinces[1]" in message
    assert "province codename" in message and "'atlantis'" in message


def test_unknown_and_missing_system(write_estate: Callable[..., Path]) -> None:
    data = estate_data()
    data["systems"]["payroll"] = data["systems"].pop("meetings")
    message = _error(write_estate, data)
    assert "systems.payroll: expected one of procedures" in message
    assert "systems.meetings: expected a value (required key is missing)" in message


def test_overlapping_network_override(write_estate: Callable[..., Path]) -> None:
    data = estate_data()
    data["province_overrides"] = {"hue": {"network": "10.213.8.0/24"}}  # tuyen_quang's slot
    message = _error(write_estate, data)
    assert "province_overrides.hue.network" in message
    assert "not overlapping the range of tuyen_quang" in message


def test_duplicate_province_and_two_zones(write_estate: Callable[..., Path]) -> None:
    data = estate_data()
    data["provinces"] = ["hue", "hue"]
    data["lab"]["default_provinces"] = ["hue"]
    data["zones"]["other"] = {"region": "r2", "provinces": ["hue"]}
    data["zones"]["lab"]["provinces"] = ["hue"]
    message = _error(write_estate, data)
    assert "provinces[1]: expected each province once" in message
    assert "a province in one zone only" in message


def test_public_range_and_wrong_type(write_estate: Callable[..., Path]) -> None:
    data = estate_data()
    data["network"]["pool"] = "8.8.0.0/16"
    data["network"]["province_prefix"] = "wide"
    message = _error(write_estate, data)
    assert "network.pool: expected a private (RFC 1918) range" in message
    assert "network.province_prefix: expected a valid integer" in message


def test_missing_required_key_and_environment_mismatch(
    write_estate: Callable[..., Path],
) -> None:
    data = estate_data()
    del data["network"]
    assert "network: expected a value (required key is missing)" in _error(write_estate, data)
    data = estate_data()
    data["environment"] = "staging"
    assert "environment: expected the folder's name 'lab'" in _error(write_estate, data)


def test_broken_yaml_names_the_line(write_estate: Callable[..., Path]) -> None:
    message = _error(write_estate, "environment: lab\nzones: [unclosed\n")
    assert "estate.yml:3" in message or "estate.yml:2" in message
    assert "expected valid YAML" in message


def test_missing_file() -> None:
    with pytest.raises(InputError, match="expected an existing file"):
        load_estate(Path("/nonexistent/inventories/x/estate.yml"))
