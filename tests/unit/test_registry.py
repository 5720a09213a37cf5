"""The registry: geography from vietnam_provinces, the legacy map, the catalog."""

from __future__ import annotations

from collections import Counter

from govops.registry import SYSTEM_IDS, catalog, legacy_provinces, provinces
from govops.registry.catalog import flavor_for, replicas_for, volume_gb_for
from govops.registry.geography import merged_from


def test_34_provinces_and_3321_communes() -> None:
    ps = provinces()
    assert len(ps) == 34
    assert sum(len(p.communes) for p in ps.values()) == 3321
    # The reports' figures: Ho Chi Minh City runs 168 wards/communes after the merger.
    assert len(ps["ho_chi_minh"].communes) == 168
    types = Counter(c.type for p in ps.values() for c in p.communes)
    assert set(types) == {"xã", "phường", "đặc khu"}
    assert types["đặc khu"] == 13


def test_communes_belong_to_their_province_and_codes_are_unique() -> None:
    seen: set[int] = set()
    for codename, p in provinces().items():
        for c in p.communes:
            assert c.province == codename
            assert c.code not in seen
            seen.add(c.code)
            assert len(c.code_str) == 5


def test_legacy_map_covers_63_old_provinces_into_the_34() -> None:
    legacy = legacy_provinces()
    assert len(legacy) == 63
    assert {lp.new_codename for lp in legacy} == set(provinces())
    # A new province keeps the code of the old province that hosts its capital.
    for codename, p in provinces().items():
        assert p.code_str in {lp.old_code for lp in merged_from(codename)}
    assert sorted(lp.old_name for lp in merged_from("tuyen_quang")) == ["Hà Giang", "Tuyên Quang"]
    merged = [c for c in provinces() if len(merged_from(c)) > 1]
    assert len(merged) == 23  # 23 merged, 11 unchanged


def test_catalog_has_the_five_systems_and_their_counterparts() -> None:
    cat = catalog()
    assert tuple(cat.systems) == SYSTEM_IDS
    for sid, system in cat.systems.items():
        assert system.id == sid
        assert system.name_vi and system.name_en
        assert system.edge_tier in system.tiers
        assert all(c in cat.counterparts for c in system.counterparts)
        # Apps listen on loopback only; nginx is the only door.
        assert all(p.from_ == "local" for p in system.tiers["app"].ports)
    assert cat.systems["lgsp"].edge_tier == "gateway"
    assert cat.national_hosts == [
        "national-portal",
        "national-docaxis",
        "national-ndxp",
        "national-reporting",
    ]


def test_every_dispatch_check_is_owned_by_exactly_one_system() -> None:
    cat = catalog()
    owned = [c for s in cat.systems.values() for c in s.readiness_checks]
    assert sorted(owned) == sorted(cat.checks)
    assert cat.checks["dossier_submission_tested"].per_commune
    assert cat.checks["dossier_submission_tested"].dispatch_done == 8
    assert cat.checks["admin_units_declared"].dispatch_done == 34


def test_sizing_scales_with_commune_count() -> None:
    sizing = catalog().systems["procedures"].sizing
    small, large = 40, 168
    assert replicas_for(sizing, small) == 2  # the floor
    assert replicas_for(sizing, large) == 3  # ceil(168 / 60)
    assert replicas_for(sizing, 10_000) == 4  # the ceiling
    assert flavor_for(sizing, small) == "g1.medium"
    assert flavor_for(sizing, large) == "g1.xlarge"
    assert volume_gb_for(sizing, large) > volume_gb_for(sizing, small)
