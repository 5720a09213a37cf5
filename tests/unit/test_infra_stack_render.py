"""Rendered stack configs: what the program needs, and what engineers set is kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from govops.registry import load_estate
from govops.render import drift, render, write

from .conftest import ROOT

HUE = "infra/stacks/Pulumi.production-hue.yaml"
PLATFORM = "infra/stacks/Pulumi.production-platform.yaml"


def _checkout(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "inventories" / "production", tmp_path / "inventories" / "production")
    return tmp_path / "inventories" / "production" / "estate.yml"


def test_stack_configs_carry_readiness_and_the_national_range(tmp_path: Path) -> None:
    files = render(load_estate(_checkout(tmp_path)))
    hue = yaml.safe_load(files[HUE])["config"]
    assert hue["govops:network"]["national"] == "10.0.0.0/16"
    assert {s["readiness"] for s in hue["govops:systems"].values()} == {"/readyz"}


def test_keys_set_with_pulumi_config_survive_rendering(tmp_path: Path) -> None:
    estate = _checkout(tmp_path)
    write(tmp_path, "production", render(load_estate(estate)))
    hue, platform = tmp_path / HUE, tmp_path / PLATFORM
    # What `pulumi stack init` (passphrase provider) and `pulumi config set` leave: the file
    # re-serialized by Pulumi (our header comment gone), the salt on top, the new keys.
    data = yaml.safe_load(hue.read_text(encoding="utf-8"))
    data["config"]["govops:dbAdminPassword"] = {"secure": "v1:sealed=="}
    hue.write_text(yaml.safe_dump({"encryptionsalt": "v1:abc=", **data}), encoding="utf-8")
    with platform.open("a", encoding="utf-8") as f:
        f.write("  govops:sshPublicKey: ssh-ed25519 AAAAkey ops\n")
    files = render(load_estate(estate))
    write(tmp_path, "production", files)
    again = render(load_estate(estate))
    assert again == files and drift(tmp_path, "production", again).clean
    data = yaml.safe_load(files[HUE])
    assert data["encryptionsalt"] == "v1:abc="
    assert data["config"]["govops:dbAdminPassword"] == {"secure": "v1:sealed=="}
    assert data["config"]["govops:role"] == "province"  # rendered keys still rendered
    assert yaml.safe_load(files[PLATFORM])["config"]["govops:sshPublicKey"].startswith("ssh-")
