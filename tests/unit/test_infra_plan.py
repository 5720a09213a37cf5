"""`govops plan`: the whole estate planned under mocks; exit 1 on duplicate names or policy
violations naming the resource, exit 2 on a bad stack config naming file, line and key."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from govops.pulumi.cli import plan_cmd
from govops.pulumi.plan import plan

from .conftest import ROOT
from .infra_support import reset_pulumi


@pytest.fixture(autouse=True)
def _fresh_pulumi() -> Iterator[None]:
    yield
    reset_pulumi()


@pytest.fixture
def stacks_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """A checkout holding the platform stack and Huế's, Huế's config altered by `change`."""

    def make(change: Callable[[dict[str, Any]], None] | None = None) -> Path:
        stacks = tmp_path / "infra" / "stacks"
        stacks.mkdir(parents=True)
        for name in ("platform", "hue"):
            shutil.copy(ROOT / f"infra/stacks/Pulumi.production-{name}.yaml", stacks)
        if change is not None:
            path = stacks / "Pulumi.production-hue.yaml"
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            change(data["config"])
            path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
        monkeypatch.setenv("GOVOPS_ROOT", str(tmp_path))
        return tmp_path

    return make


def test_production_plan_json() -> None:
    result = CliRunner().invoke(plan_cmd, ["--env", "production", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["stacks"]) == 35 and data["problems"] == []
    assert data["resources"] == sum(s["resources"] for s in data["stacks"])
    assert data["resources"] == sum(data["totals"].values())
    hue = next(s for s in data["stacks"] if s["province"] == "hue")
    assert set(hue["systems"]) == {
        "shared",
        "db",
        "bastion",
        "procedures",
        "documents",
        "lgsp",
        "reporting",
        "meetings",
    }
    assert hue["systems"]["procedures"]["openstack:compute/instance:Instance"] == 2
    # Every inventory host: 34 × (systems + db + its standby + bastion), the monitors, the
    # zones' backup hosts and the bastion.
    assert data["totals"]["openstack:compute/instance:Instance"] == 388 + 34 + 3
    assert data["totals"]["openstack:compute/serverGroup:ServerGroup"] == 34  # one per db pair
    assert hue["systems"]["db"]["openstack:compute/instance:Instance"] == 2


def test_one_province_as_a_table() -> None:
    result = CliRunner().invoke(plan_cmd, ["--province", "hue"])
    assert result.exit_code == 0, result.output
    assert "procedures" in result.output and "by resource type" in result.output
    assert "resources in 1 stacks, 0 problem(s)" in result.output


def test_unknown_province_is_exit_2() -> None:
    result = CliRunner().invoke(plan_cmd, ["--province", "atlantis"])
    assert result.exit_code == 2
    assert "--province: expected a province with a stack" in result.output


def test_fast_and_stock_mocks_plan_the_same() -> None:
    one = plan(ROOT, "production", province="hue", jobs=1)
    stock = plan(ROOT, "production", province="hue", jobs=1, fast=False)
    assert one.as_json()["stacks"] == stock.as_json()["stacks"]


def test_bad_stack_config_is_exit_2_naming_file_line_key(stacks_root: Callable[..., Path]) -> None:
    def change(config: dict[str, Any]) -> None:
        config["govops:systems"]["procedures"]["ports"][0]["from"] = "everyone"

    stacks_root(change)
    result = CliRunner().invoke(plan_cmd, ["--env", "production"])
    assert result.exit_code == 2
    assert "infra/stacks/Pulumi.production-hue.yaml:" in result.output
    assert "config.govops:systems.procedures.ports[0].from: expected one of public" in result.output


def test_duplicate_names_are_exit_1_naming_the_resource(stacks_root: Callable[..., Path]) -> None:
    def change(config: dict[str, Any]) -> None:
        # Two systems' hosts under one name: the mocks accept it, the engine would not.
        config["govops:systems"]["reporting"]["hosts"][0]["name"] = "hue-documents"

    stacks_root(change)
    result = CliRunner().invoke(plan_cmd, ["--env", "production", "--json"])
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert any(
        "duplicate resource name" in p
        and p.endswith("openstack:compute/instance:Instance::hue-documents")
        for p in problems
    ), problems


def test_policy_violation_is_exit_1_naming_the_resource(stacks_root: Callable[..., Path]) -> None:
    def change(config: dict[str, Any]) -> None:
        config["govops:systems"]["meetings"]["ports"].append(
            {"tier": "front", "port": 5432, "protocol": "tcp", "from": "public"}
        )

    stacks_root(change)
    result = CliRunner().invoke(plan_cmd, ["--env", "production"])
    assert result.exit_code == 1
    assert (
        "hue-meetings-front-tcp-5432-public (openstack:networking/secGroupRule:SecGroupRule): "
        "no-public-admin-ingress: admits PostgreSQL (tcp/5432) from 0.0.0.0/0"
    ) in result.output
