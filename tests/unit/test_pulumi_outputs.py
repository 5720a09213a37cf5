"""Pulumi → Ansible: `pulumi stack output --json` fills ansible_host in the inventory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from govops.errors import InputError
from govops.render.pulumi_outputs import apply_outputs, load_outputs

from .conftest import ROOT
from .infra_support import reset_pulumi, run_config, stack_config

HOSTS = "inventories/production/hosts.yml"


@pytest.fixture(autouse=True)
def _fresh_pulumi() -> Iterator[None]:
    yield
    reset_pulumi()


@pytest.fixture
def files() -> dict[str, str]:
    """The rendered inventory as `govops render` produced it (committed, no drift)."""
    return {HOSTS: (ROOT / HOSTS).read_text(encoding="utf-8"), "other.yml": "x: 1\n"}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def ansible_hosts(text: str) -> dict[str, str]:
    return {k: v["ansible_host"] for k, v in yaml.safe_load(text)["all"]["hosts"].items()}


def test_outputs_of_the_mocked_program_change_nothing(
    tmp_path: Path, files: dict[str, str]
) -> None:
    """The program puts every host at the inventory's address: the merge is a no-op."""
    outputs = run_config(stack_config("production-hue")).outputs
    merged = apply_outputs(files, load_outputs(write(tmp_path, outputs)))
    assert merged == files


def test_addresses_are_filled_in(tmp_path: Path, files: dict[str, str]) -> None:
    outputs = {"hosts": {"hue-db": "10.46.128.77", "hue-lgsp-1": "10.46.64.99"}}
    merged = apply_outputs(files, load_outputs(write(tmp_path, outputs)))
    got, before = ansible_hosts(merged[HOSTS]), ansible_hosts(files[HOSTS])
    assert got["hue-db"] == "10.46.128.77" and got["hue-lgsp-1"] == "10.46.64.99"
    assert {k: v for k, v in got.items() if k not in ("hue-db", "hue-lgsp-1")} == {
        k: v for k, v in before.items() if k not in ("hue-db", "hue-lgsp-1")
    }
    assert merged[HOSTS].startswith("# Rendered by `govops render")
    assert merged["other.yml"] == files["other.yml"]
    # The roles' index of other hosts (govops_hosts) follows the same addresses.
    index = yaml.safe_load(merged[HOSTS])["all"]["vars"]["govops_hosts"]
    assert {k: v["ansible_host"] for k, v in index.items()} == got


def test_many_stacks_at_once(tmp_path: Path, files: dict[str, str]) -> None:
    outputs = {
        "production-hue": {"hosts": {"hue-db": "10.46.128.11"}},
        "production-ha-noi": {"hosts": {"ha-noi-db": "10.1.128.11"}, "vips": {}},
    }
    got = ansible_hosts(apply_outputs(files, load_outputs(write(tmp_path, outputs)))[HOSTS])
    assert (got["hue-db"], got["ha-noi-db"]) == ("10.46.128.11", "10.1.128.11")


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        ("{not json", "(top level)", "valid JSON"),
        ([], "(top level)", "a JSON object of stack outputs"),
        ({"hosts": {"hue-db": "10.46.128.300"}}, "hosts.hue-db", "an IPv4 address"),
        ({"hosts": []}, "hosts", "an object of host name → private IP"),
        ({"production-hue": {"vips": {}}}, "production-hue.hosts", "an object of host name"),
        (
            {"hosts": {"hue-db": "10.46.128.10"}, "vips": {"lgsp": {"public": "x"}}},
            "vips.lgsp.public",
            "an IPv4 address",
        ),
    ],
)
def test_bad_outputs_name_file_and_key(tmp_path: Path, data: Any, key: str, expected: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(InputError) as err:
        load_outputs(path)
    assert err.value.file == str(path) and err.value.key == key
    assert err.value.expected.startswith(expected)


def test_an_unknown_host_is_an_error(tmp_path: Path, files: dict[str, str]) -> None:
    path = write(tmp_path, {"production-hue": {"hosts": {"hue-ghost": "10.46.64.200"}}})
    with pytest.raises(InputError) as err:
        apply_outputs(files, load_outputs(path))
    assert err.value.key == "production-hue.hosts.hue-ghost"
    assert str(path) in str(err.value) and HOSTS in str(err.value)


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="pulumi stack output --json"):
        load_outputs(tmp_path / "absent.json")
