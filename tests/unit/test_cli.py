"""The CLI: help everywhere, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from govops.cli import main

from .conftest import ROOT


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            found += _commands(cmd, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(main), ids=lambda p: " ".join(p) or "govops")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_validate_reports_registry_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["registry", "validate", "--all-envs"])
    assert result.exit_code == 0, result.output
    assert "34 provinces, 3321 communes" in result.output


def test_show_json_and_unknown_province(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["registry", "show", "--env", "lab", "--json"])
    rows = json.loads(result.output)
    assert len(rows) == 34 and rows[0]["codename"] == "ha_noi"
    result = CliRunner().invoke(main, ["registry", "show", "--province", "hue", "--json"])
    detail = json.loads(result.output)
    assert detail["zone"] == "dc-central" and len(detail["communes"]) == 40
    assert all(h["name"].startswith("hue-") for h in detail["hosts"])
    result = CliRunner().invoke(main, ["registry", "show", "--province", "atlantis"])
    assert result.exit_code == 2
    assert "--province" in result.output and "atlantis" in result.output


def test_invalid_estate_exits_2_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "inventories" / "broken"
    env.mkdir(parents=True)
    text = (ROOT / "inventories/lab/estate.yml").read_text(encoding="utf-8")
    text = text.replace("environment: lab", "environment: broken")
    text = text.replace("provinces: all", "provinces: [hue, atlantis]")
    (env / "estate.yml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("GOVOPS_ROOT", str(tmp_path))
    result = CliRunner().invoke(main, ["render", "--env", "broken"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "estate.yml:4: provinces[1]" in result.output.replace("\n", "")


def test_render_check_exits_1_on_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    shutil.copytree(ROOT / "inventories/lab", tmp_path / "inventories/lab")
    monkeypatch.setenv("GOVOPS_ROOT", str(tmp_path))
    assert CliRunner().invoke(main, ["render", "--env", "lab", "--check"]).exit_code == 0
    (tmp_path / "inventories/lab/topology.yml").write_text("edited\n")
    result = CliRunner().invoke(main, ["render", "--env", "lab", "--check"])
    assert result.exit_code == 1
    assert "+environment: lab" in result.output
    assert CliRunner().invoke(main, ["render", "--env", "lab"]).exit_code == 0
    assert CliRunner().invoke(main, ["render", "--env", "lab", "--check"]).exit_code == 0


def test_render_from_pulumi_fills_addresses_and_names_unknown_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import yaml

    shutil.copytree(ROOT / "inventories/production", tmp_path / "inventories/production")
    (tmp_path / "infra/stacks").mkdir(parents=True)
    monkeypatch.setenv("GOVOPS_ROOT", str(tmp_path))
    outputs = tmp_path / "hue.json"
    outputs.write_text(json.dumps({"hosts": {"hue-db": "10.46.128.77"}}), encoding="utf-8")
    args = ["render", "--env", "production", "--from-pulumi", str(outputs)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    hosts = yaml.safe_load((tmp_path / "inventories/production/hosts.yml").read_text())
    assert hosts["all"]["hosts"]["hue-db"]["ansible_host"] == "10.46.128.77"
    # the committed inventory now differs from a plain render: --check says so
    plain = CliRunner().invoke(main, ["render", "--env", "production", "--check"])
    assert plain.exit_code == 1
    assert CliRunner().invoke(main, [*args, "--check"]).exit_code == 0

    outputs.write_text(json.dumps({"hosts": {"atlantis-db": "10.0.0.1"}}), encoding="utf-8")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "hue.json" in result.output and "atlantis-db" in result.output
    assert "Traceback" not in result.output


def test_readme_urls_reach_the_lab_from_the_controller() -> None:
    """A lab host's name (`monitor`, `hue-procedures`) resolves only inside the lab's podman
    network: a command the README shows for the controller uses the host's address."""
    import re

    import yaml

    topology = yaml.safe_load((ROOT / "inventories/lab/topology.yml").read_text(encoding="utf-8"))
    lab_hosts = {h["name"]: h["ip"] for h in topology["hosts"]}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    urls = re.findall(r"--(?:prometheus|alertmanager\.url)[ =](https?://[^\s`]+)", readme)
    assert urls, "the README shows no --prometheus example any more: adjust this test"
    for url in urls:
        host = re.match(r"https?://([^:/]+)", url)
        assert host is not None
        assert host.group(1) not in lab_hosts, f"README: {url} does not resolve from the controller"
        if host.group(1).startswith("10.213."):
            assert host.group(1) in lab_hosts.values(), f"README: {url} is no lab host's address"


def test_commands_a_runbook_step_runs_read_the_inventory_the_engine_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine sets GOVOPS_INVENTORY for its steps' commands: a throwaway lab's inventory lives
    outside the checkout, and `govops inherit`/`db`/`dns` must read it, not inventories/ENV."""
    inventory = tmp_path / "elsewhere" / "lab"
    inventory.mkdir(parents=True)
    (inventory / "estate.yml").write_text(
        (ROOT / "inventories" / "lab" / "estate.yml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.setenv("GOVOPS_INVENTORY", str(inventory))
    run = ["inherit", "run", "--province", "tuyen_quang"]
    result = CliRunner().invoke(main, [*run, "--env", "lab"])
    assert result.exit_code == 2, result.output
    # The DSN file beside that estate, not the checkout's inventories/lab/inherit.yml.
    assert f"{inventory / 'inherit.yml'}: targets.tuyen_quang" in result.output
    result = CliRunner().invoke(main, [*run, "--env", "production"])
    assert result.exit_code == 2, result.output
    assert "environment: expected 'production' (GOVOPS_INVENTORY), got 'lab'" in result.output
