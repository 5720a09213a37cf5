"""`govops monitoring …`: the thin CLI over the exporters."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from exporters.govops_prober.config import load_config
from govops.cli import main


def test_prober_config_is_written_from_the_registry(tmp_path: Path) -> None:
    out = tmp_path / "prober.json"
    result = CliRunner().invoke(
        main,
        ["monitoring", "prober-config", "--env", "lab", "--out", str(out),
         "--commune-period", "3600", "--state-dir", "/var/lib/govops-prober"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = load_config(out)
    assert len(config.provinces) == 34
    assert config.commune_period_seconds == 3600
    assert config.provinces["hue"].systems["lgsp"] == "https://hue-lgsp"


def test_prober_config_names_a_bad_endpoints_file(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("systems: {atlantis: {procedures: 'http://127.0.0.1:1'}}\n")
    result = CliRunner().invoke(
        main, ["monitoring", "prober-config", "--env", "lab", "--endpoints", str(endpoints)]
    )
    assert result.exit_code == 2
    assert "systems.atlantis" in result.output


def test_rules_and_dashboards_have_no_drift() -> None:
    for what in ("rules", "dashboards"):
        result = CliRunner().invoke(main, ["monitoring", what, "--check"])
        assert result.exit_code == 0, result.output
        assert "no drift" in result.output


def test_prober_config_to_stdout_is_json() -> None:
    result = CliRunner().invoke(main, ["monitoring", "prober-config", "--env", "production"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["counterparts"]["portal"] == "https://portal.national.gov.example"


def test_prober_config_reads_an_estate_outside_the_checkout(tmp_path: Path) -> None:
    """A throwaway lab's inventory lives in a temporary folder: the role passes its estate."""
    root = Path(__file__).resolve().parents[2]
    source = yaml.safe_load((root / "inventories/lab/estate.yml").read_text(encoding="utf-8"))
    source["environment"] = "elsewhere"
    source["provinces"] = source["lab"]["default_provinces"] = ["hue", "tuyen_quang"]
    estate = tmp_path / "elsewhere" / "estate.yml"
    estate.parent.mkdir()
    estate.write_text(yaml.safe_dump(source, sort_keys=False), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["monitoring", "prober-config", "--env", "nowhere", "--estate", str(estate)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["environment"] == "elsewhere"
    assert sorted(data["provinces"]) == ["hue", "tuyen_quang"]
