"""Legacy data inheritance, without a database: the commune map, re-keying, configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govops.errors import InputError
from govops.inherit.communes import (
    AMBIGUOUS,
    UNJOINED,
    UNKNOWN_WARD,
    CommuneMap,
    OldWard,
    commune_map,
    name_key,
)
from govops.inherit.config import absorbed, old_codename, resolve
from govops.inherit.job import kinds_for
from govops.inherit.schema import (
    CANONICAL,
    REKEY_FACTOR,
    VENDORS,
    business_text,
    provenance,
    rekey,
    target_ddl,
)
from govops.registry.geography import legacy_provinces, provinces

old_codes = st.sampled_from(sorted({lp.old_code for lp in legacy_provinces()}))
source_ids = st.integers(1, REKEY_FACTOR - 1)


@given(old_codes, source_ids)
def test_rekey_keeps_provenance(code: str, sid: int) -> None:
    assert provenance(rekey(code, sid)) == (code, sid)


@given(old_codes, old_codes, source_ids, source_ids)
def test_two_old_provinces_ids_never_collide(a: str, b: str, x: int, y: int) -> None:
    if (a, x) != (b, y):
        assert rekey(a, x) != rekey(b, y)


@pytest.mark.parametrize("sid", [0, -1, REKEY_FACTOR])
def test_rekey_refuses_an_id_it_cannot_keep_apart(sid: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        rekey("02", sid)


wards = st.text(alphabet="0123456789", min_size=1, max_size=6)


@given(
    st.dictionaries(wards, st.frozensets(st.integers(1, 40000), max_size=4), max_size=30),
    st.dictionaries(wards, st.integers(1, 3), max_size=5),
    wards,
)
def test_resolve_never_guesses(
    targets: dict[str, frozenset[int]], unjoined: dict[str, int], probe: str
) -> None:
    """One commune maps; several, none, a row that did not join, or an unknown ward: a reason."""
    known = set(targets) | set(unjoined)
    cmap = CommuneMap(
        wards={w: OldWard(w, w, "1", "d", "02") for w in known},
        targets=targets,
        unjoined=unjoined,
    )
    for ward in [*known, probe]:
        commune, reason = cmap.resolve(ward)
        assert (commune is None) != (reason is None)
        if ward not in known:
            assert reason == UNKNOWN_WARD
        elif len(targets.get(ward, ())) > 1:
            assert reason == AMBIGUOUS
        elif ward in unjoined or not targets.get(ward):
            assert reason == UNJOINED
        else:
            assert commune in targets[ward]
    counts = cmap.coverage()
    assert counts["old_wards"] == sum(
        counts[f"old_wards_{k}"] for k in ("mapped", "ambiguous", "unjoined")
    )


@given(st.text(min_size=1, max_size=20))
def test_name_key_is_idempotent(name: str) -> None:
    assert name_key(name_key(name)) == name_key(name)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Bà Rịa - Vũng Tàu", "Bà Rịa-Vũng Tàu"),
        ("Phường Thuận Hòa", "Thuận Hoà"),
        ("Tỉnh Hà Giang", "hà giang"),
        ("Xã Ea H'Leo", "Ea H’leo"),
    ],
)
def test_name_key_joins_spellings_of_one_name(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


def test_the_published_map_covers_the_registry() -> None:
    cmap = commune_map()
    registry = {c.code for p in provinces().values() for c in p.communes}
    counts = cmap.coverage()
    assert counts["registry_communes"] == len(registry) == 3321
    assert cmap.covered_communes <= registry
    assert counts["covered_communes"] >= 3200  # measured 3,299 with 1.0.5
    # every old province the registry knows has its wards in the map
    for lp in legacy_provinces():
        assert cmap.wards_of(lp.old_code), lp.old_name
    for ward in cmap.wards_of("02"):  # a mapped ward's commune lies in the merged province
        commune, _ = cmap.resolve(ward.code)
        if commune is not None:
            tq = {c.code for c in provinces()["tuyen_quang"].communes}
            assert commune in tq, ward


def test_absorbed_old_provinces_of_the_lab_provinces() -> None:
    assert [old_codename(lp) for lp in absorbed("tuyen_quang")] == ["ha_giang"]
    assert sorted(old_codename(lp) for lp in absorbed("ho_chi_minh")) == [
        "ba_ria_vung_tau",
        "binh_duong",
    ]
    assert absorbed("hue") == []
    with pytest.raises(InputError, match="province codename"):
        absorbed("atlantis")


def test_resolve_dsns_in_order_and_refuses_a_password_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "inherit.yml"
    config.write_text("targets: {tuyen_quang: 'host=tq-db dbname=procedures'}\n")
    with pytest.raises(InputError, match=r"sources\.ha_giang"):
        resolve(config, "tuyen_quang", None, {}, None)
    monkeypatch.setenv("GOVOPS_INHERIT_SOURCE_HA_GIANG", "host=env-db dbname=legacy")
    target, sources = resolve(config, "tuyen_quang", None, {}, None)
    assert target == "host=tq-db dbname=procedures"
    assert [s.dsn for s in sources] == ["host=env-db dbname=legacy"]
    _, sources = resolve(config, "tuyen_quang", "02", {"ha_giang": "host=cli"}, None)
    assert sources[0].dsn == "host=cli"
    assert resolve(config, "hue", None, {}, None) == ("", [])  # nothing merged in: a no-op
    with pytest.raises(InputError, match="old provinces merged into tuyen_quang"):
        resolve(config, "tuyen_quang", "binh_duong", {}, None)
    config.write_text("targets: {tuyen_quang: 'postgresql://u:hunter2@tq-db/p'}\n")
    with pytest.raises(InputError, match="without a password") as exc:
        resolve(config, "tuyen_quang", None, {}, None)
    assert "hunter2" not in str(exc.value)


def test_kinds_for_systems() -> None:
    assert kinds_for(()) == ["dossier", "document", "report"]
    assert kinds_for(("documents",)) == ["document"]
    with pytest.raises(InputError, match="system holding legacy records"):
        kinds_for(("meetings",))


def test_every_vendor_selects_every_canonical_column() -> None:
    for vendor in VENDORS.values():
        for kind, cols in CANONICAL.items():
            select = vendor.select[kind]
            assert "AS source_id" in select
            for col, _ in cols:
                assert col in select, (vendor.name, kind, col)
    for kind, cols in CANONICAL.items():
        text = business_text(kind, "c")
        assert all(f"c.{col}" in text for col, _ in cols)
    assert "inherit_quarantine" in target_ddl()
