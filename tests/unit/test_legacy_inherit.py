"""The lab's wiring of `govops inherit`: hosts, DSNs, the exporter's table and the runbooks
agree with the estate and with the inherit package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from govops.inherit.config import absorbed, old_codename
from govops.inherit.schema import target_ddl
from govops.registry.estate import dns_label, legacy_codenames, load_estate
from govops.registry.geography import provinces

ROOT = Path(__file__).resolve().parents[2]


def _words(sql: str) -> str:
    return " ".join(sql.split())


def test_estate_names_sources_as_inherit_does() -> None:
    for p in provinces():
        assert legacy_codenames(p) == [old_codename(lp) for lp in absorbed(p)], p


def test_lab_inherit_dsns_point_at_the_estates_hosts() -> None:
    estate = load_estate(ROOT / "inventories/lab/estate.yml")
    hosts = {h.name: h for h in estate.hosts()}
    conf = yaml.safe_load((ROOT / "inventories/lab/inherit.yml").read_text(encoding="utf-8"))
    expected_sources, expected_targets = {}, {}
    for p in estate.provinces:
        for old in legacy_codenames(p):
            host = hosts[f"legacy-{dns_label(old)}-db"]
            assert host.province == p and "legacy_sources" in host.groups
            expected_sources[old] = f"host={host.ip} dbname=legacy user=legacy sslmode=require"
        if legacy_codenames(p):
            ip = hosts[f"{dns_label(p)}-db"].ip
            expected_targets[p] = f"host={ip} dbname=procedures user=procedures sslmode=require"
    assert conf["sources"] == expected_sources
    assert conf["targets"] == expected_targets
    assert set(conf["sources"]) >= {"ha_giang", "binh_duong", "ba_ria_vung_tau"}


def test_exporter_creates_the_table_inherit_writes() -> None:
    task = (ROOT / "roles/postgres_exporter/tasks/inherit.yml").read_text(encoding="utf-8")
    role_ddl = re.search(r"CREATE TABLE IF NOT EXISTS inherit_verification \(.*?\);", task, re.S)
    ours = re.search(
        r"CREATE TABLE IF NOT EXISTS inherit_verification \(.*?\);", target_ddl(), re.S
    )
    assert role_ddl and ours
    assert _words(role_ddl.group(0)) == _words(ours.group(0))


def test_runbooks_inherit_in_the_adjustment_phase() -> None:
    for name in ("rehearsal", "cutover"):
        book = yaml.safe_load((ROOT / f"runbooks/{name}.yml").read_text(encoding="utf-8"))
        adjustment = next(p for p in book["phases"] if p["id"] == "adjustment")
        step = next(s for s in adjustment["steps"] if s["id"] == "inherit_legacy_data")
        assert step["idempotent"] is True
        assert step["readiness_check"] == "legacy_data_inherited"
        assert step["action"]["with"]["command"][1:3] == ["inherit", "run"]
        assert step["verify"]["with"]["command"][1:3] == ["inherit", "verify"]


def test_rehearsal_summary_lines_per_old_province() -> None:
    from govops.lab.rehearse import inheritance_lines

    status = {
        "ho_chi_minh": {
            "checkpoints": [
                {"source": "binh_duong", "kind": "dossier", "moved": 2999, "quarantined": 1},
                {"source": "binh_duong", "kind": "document", "moved": 750, "quarantined": 0},
                {"source": "ba_ria_vung_tau", "kind": "dossier", "moved": 3000, "quarantined": 0},
            ],
            "verification": [
                {"source": "binh_duong", "kind": "dossier", "ok": True},
                {"source": "binh_duong", "kind": "document", "ok": True},
                {"source": "ba_ria_vung_tau", "kind": "dossier", "ok": False},
            ],
        }
    }
    assert inheritance_lines("ho_chi_minh", status) == [
        "inherited into ho_chi_minh from ba_ria_vung_tau: 3,000 moved, 0 quarantined, "
        "verify FAILED",
        "inherited into ho_chi_minh from binh_duong: 3,749 moved, 1 quarantined, verified ok",
    ]
    assert inheritance_lines("hue", {}) == [
        "inherited into hue: nothing (no old province merged in)"
    ]


def test_render_writes_the_dsn_file_only_where_the_estate_runs_the_old_databases() -> None:
    """A throwaway lab (another /16) gets its own DSNs; production's old servers are not ours."""
    from govops.render import render

    lab = render(load_estate(ROOT / "inventories/lab/estate.yml"))
    assert lab["inventories/lab/inherit.yml"] == (ROOT / "inventories/lab/inherit.yml").read_text(
        encoding="utf-8"
    )
    production = render(load_estate(ROOT / "inventories/production/estate.yml"))
    assert not [path for path in production if path.endswith("/inherit.yml")]


def test_a_labs_passwords_are_its_own_file_in_the_lab_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """playbooks/legacy.yml writes the lab's passwords where `govops inherit` hands libpq them
    (not the operator's ~/.pgpass); PGPASSFILE set by the operator wins; no lab, no file."""
    from govops.inherit.config import lab_passfile
    from govops.lab.paths import LabPaths

    monkeypatch.setenv("GOVOPS_CACHE", str(tmp_path / "cache"))
    play = yaml.safe_load((ROOT / "playbooks/legacy.yml").read_text(encoding="utf-8"))
    paths = [t["ansible.builtin.lineinfile"]["path"] for p in play for t in p.get("tasks", [])]
    assert paths == ["{{ govops_lab_cache }}/lab/{{ govops_environment }}/pgpass"]

    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "topology.yml").write_text("{}\n", encoding="utf-8")  # a throwaway lab's
    assert lab_passfile("t1a2b3c", inventory, {}) is None  # not written yet
    passfile = LabPaths.default().pgpass("t1a2b3c")
    assert passfile == tmp_path / "cache/lab/t1a2b3c/pgpass"
    passfile.parent.mkdir(parents=True)
    passfile.write_text("10.0.0.1:5432:legacy:legacy:x\n", encoding="utf-8")
    assert lab_passfile("t1a2b3c", inventory, {}) == str(passfile)
    assert lab_passfile("t1a2b3c", inventory, {"PGPASSFILE": "/run/secrets/pg"}) is None
    production = ROOT / "inventories/production"
    assert lab_passfile("production", production, {}) is None
