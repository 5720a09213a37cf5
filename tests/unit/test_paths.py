"""Where an environment's inventory is, and whether it is a lab's."""

from __future__ import annotations

from pathlib import Path

import pytest

from govops.paths import inventory_dir, is_lab, repo_root


def test_inventory_dir_is_the_checkouts_unless_the_engine_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVOPS_INVENTORY", raising=False)
    assert inventory_dir("production") == repo_root() / "inventories" / "production"
    monkeypatch.setenv("GOVOPS_INVENTORY", str(tmp_path))
    assert inventory_dir("t1a2b3c") == tmp_path


def test_a_throwaway_lab_is_a_lab_by_its_rendered_topology(tmp_path: Path) -> None:
    # `govops db` took every environment but `lab` for production and used the operator's
    # SSH: the lab proofs' restore failed on an unknown host key.
    assert not is_lab("t1a2b3c", tmp_path)
    (tmp_path / "topology.yml").write_text("hosts: []\n", encoding="utf-8")
    assert is_lab("t1a2b3c", tmp_path)
    assert is_lab("lab", tmp_path / "absent")
    assert not is_lab("production", repo_root() / "inventories" / "production")
