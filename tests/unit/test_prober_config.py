"""The prober's configuration: built from the registry, validated with errors that name keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporters.govops_prober.config import ConfigError, load_config, parse_config
from exporters.govops_prober.from_estate import config_from_estate
from govops.errors import InputError
from govops.registry import load_estate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab_config_json() -> dict[str, object]:
    estate = load_estate(ROOT / "inventories/lab/estate.yml")
    data: dict[str, object] = json.loads(config_from_estate(estate).to_json())
    return data


def test_every_province_and_commune_of_the_registry_is_a_target() -> None:
    config = config_from_estate(load_estate(ROOT / "inventories/production/estate.yml"))
    assert len(config.provinces) == 34
    assert sum(len(p.communes) for p in config.provinces.values()) == 3321
    hue = config.provinces["hue"]
    assert hue.systems["procedures"] == "https://hue-procedures.gov.example"
    assert hue.agency_to == "000.00.00.H46"
    assert hue.agency_from.endswith(".H46")


def test_origins_are_only_the_estates_fronts_and_counterparts() -> None:
    config = config_from_estate(load_estate(ROOT / "inventories/lab/estate.yml"))
    origins = config.origins()
    assert "https://hue-procedures:443" in origins
    assert "https://national-portal:443" in origins
    assert len(origins) == 34 * 5 + 4


def test_endpoints_replace_urls_but_add_no_province() -> None:
    estate = load_estate(ROOT / "inventories/lab/estate.yml")
    config = config_from_estate(
        estate, endpoints={"systems": {"hue": {"procedures": "http://127.0.0.1:9"}}}
    )
    assert config.provinces["hue"].systems["procedures"] == "http://127.0.0.1:9"
    with pytest.raises(InputError, match=r"systems\.atlantis"):
        config_from_estate(estate, endpoints={"systems": {"atlantis": {}}})


def test_written_config_loads_back(tmp_path: Path, lab_config_json: dict[str, object]) -> None:
    path = tmp_path / "prober.json"
    path.write_text(json.dumps(lab_config_json), encoding="utf-8")
    config = load_config(path)
    assert config.environment == "lab"
    assert config.provinces["ho_chi_minh"].communes[0].isdigit()


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d.pop("environment"), "environment"),
        (lambda d: d["provinces"]["hue"]["systems"].pop("lgsp"), "provinces.hue.systems"),
        (lambda d: d["provinces"]["hue"].update(communes=["123"]), "provinces.hue.communes"),
        (lambda d: d["counterparts"].update(portal="ftp://x"), "counterparts.portal"),
        (lambda d: d.update(timeout_seconds=-1), "timeout_seconds"),
        (lambda d: d.update(max_concurrency=0), "max_concurrency"),
        (lambda d: d.update(check_timeout_seconds=99), "check_timeout_seconds"),
    ],
)
def test_errors_name_the_key(lab_config_json: dict[str, object], change: object, key: str) -> None:
    data = json.loads(json.dumps(lab_config_json))
    change(data)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=rf"prober\.json: {key}: expected"):
        parse_config(data, "prober.json")
