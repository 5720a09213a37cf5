"""Reading the rendered lab topology and choosing which hosts `govops lab up` starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from govops.errors import InputError
from govops.lab.topology import (
    SelectionError,
    TopologyError,
    load_topology,
    parse_provinces,
    parse_topology,
    select_hosts,
)

SOURCE = Path("inventories/lab/topology.yml")


def topology_data() -> dict[str, Any]:
    def host(name: str, ip: str, province: str | None, system: str | None = None) -> dict[str, Any]:
        return {"name": name, "ip": ip, "province": province, "system": system, "groups": []}

    return {
        "environment": "lab",
        "network": {"name": "govops-lab", "subnet": "10.213.0.0/16", "gateway": "10.213.0.1"},
        "default_provinces": ["hue"],
        "hosts": [
            host("hue-procedures", "10.213.46.11", "hue", "procedures"),
            host("hue-db", "10.213.46.10", "hue"),
            host("tuyen-quang-db", "10.213.8.10", "tuyen_quang"),
            host("ho-chi-minh-db", "10.213.79.10", "ho_chi_minh"),
            host("national-portal", "10.213.0.11", None),
            host("monitor", "10.213.0.10", None),
        ],
    }


def names(data: dict[str, Any], provinces: list[str] | None) -> list[str]:
    return [h.name for h in select_hosts(parse_topology(data, SOURCE), provinces)]


def test_default_selection_is_default_provinces_plus_national_and_monitor() -> None:
    assert names(topology_data(), None) == [
        "hue-procedures",
        "hue-db",
        "national-portal",
        "monitor",
    ]


def test_named_provinces() -> None:
    assert names(topology_data(), ["tuyen_quang", "ho_chi_minh"]) == [
        "tuyen-quang-db",
        "ho-chi-minh-db",
        "national-portal",
        "monitor",
    ]


def test_all_provinces() -> None:
    assert len(names(topology_data(), ["all"])) == 6


def test_unknown_province_is_bad_input_listing_the_known_ones() -> None:
    with pytest.raises(SelectionError, match=r"atlantis.*known: ho_chi_minh, hue") as caught:
        names(topology_data(), ["hue", "atlantis"])
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("hue", ["hue"]),
        ("hue, tuyen_quang,", ["hue", "tuyen_quang"]),
        ("all", ["all"]),
    ],
)
def test_parse_provinces(value: str | None, expected: list[str] | None) -> None:
    assert parse_provinces(value) == expected


def test_empty_provinces_option_is_bad_input() -> None:
    with pytest.raises(SelectionError):
        parse_provinces(" , ")


@pytest.mark.parametrize(
    ("mutate", "key", "message"),
    [
        (lambda d: d["hosts"][1].update(ip="10.213.46.11"), "", "duplicate host ip"),
        (lambda d: d["hosts"][2].update(name="hue-db"), "", "duplicate host name"),
        (lambda d: d["hosts"][3].update(ip="192.168.1.5"), "", "not a free address"),
        (lambda d: d["hosts"][3].update(ip="10.213.0.1"), "", "not a free address"),
        (lambda d: d["hosts"][4].update(ip="not-an-ip"), "hosts[4].ip", "IPv4"),
        (lambda d: d["hosts"][0].update(name="Hue_Procedures"), "hosts[0].name", "pattern"),
        (lambda d: d["network"].pop("subnet"), "network.subnet", "required"),
        (lambda d: d.update(default_provinces=["atlantis"]), "", "atlantis"),
        (lambda d: d.update(surprise=1), "surprise", "not permitted"),
    ],
)
def test_invalid_topology_names_file_and_key(mutate: Any, key: str, message: str) -> None:
    data = topology_data()
    mutate(data)
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, SOURCE)
    text = str(caught.value)
    assert text.startswith(str(SOURCE))
    assert key in text and message in text
    assert isinstance(caught.value, InputError) and caught.value.exit_code == 2


def test_missing_topology_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"lab/topology.yml: missing; run `govops render"):
        load_topology(tmp_path, "lab")


def test_environment_must_match_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "staging" / "topology.yml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(topology_data()))
    with pytest.raises(TopologyError, match="environment: is 'lab', expected 'staging'"):
        load_topology(tmp_path, "staging")


def test_the_rendered_lab_topology_loads() -> None:
    root = Path(__file__).resolve().parents[2] / "inventories"
    topology = load_topology(root, "lab")
    assert len(select_hosts(topology, ["all"])) == len(topology.hosts)
    assert {"national-portal", "monitor"} <= {h.name for h in select_hosts(topology, None)}
