"""TTL planning, record diffing, the lab's zones and a province's moves (govops.dns.records),
and the switch state's durable form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govops.dns import state as st
from govops.dns.records import (
    LAB_ZONE,
    LEGACY_ZONE,
    LOW_TTL,
    MOVING_TTL,
    RRset,
    diff,
    lab_zones,
    lowering_deadline,
    moves_for,
    plan_ttl,
    wait_before_switch,
)
from govops.errors import InputError
from govops.paths import repo_root
from govops.registry.estate import estate_path, load_estate
from govops.registry.geography import legacy_provinces

T0 = datetime(2025, 6, 28, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def lab():  # type: ignore[no-untyped-def]
    return load_estate(estate_path(repo_root() / "inventories", "lab"))


def test_plan_lowers_each_name_one_old_ttl_before_the_switch() -> None:
    current = {"a.gov.vn": RRset.of(3600, ["192.0.2.1"]), "b.gov.vn": RRset.of(300, ["192.0.2.2"])}
    steps = plan_ttl(current, T0, low_ttl=30, margin_s=600)
    assert [(s.name, s.current_ttl, s.low_ttl) for s in steps] == [
        ("a.gov.vn", 3600, 30),
        ("b.gov.vn", 300, 30),
    ]
    assert steps[0].lower_by == T0 - timedelta(seconds=3600 + 600)
    assert steps[1].lower_by == T0 - timedelta(seconds=300 + 600)
    # The step's one deadline is the earliest: the longest TTL decides.
    assert lowering_deadline(steps, T0) == T0 - timedelta(seconds=4200)


def test_plan_leaves_out_names_already_low() -> None:
    current = {"a.gov.vn": RRset.of(30, ["192.0.2.1"]), "b.gov.vn": RRset.of(10, ["192.0.2.2"])}
    assert plan_ttl(current, T0, low_ttl=30) == []
    assert lowering_deadline([], T0) == T0


def test_wait_before_switch_counts_down_the_old_ttl() -> None:
    lowered = T0 - timedelta(seconds=100)
    assert wait_before_switch(lowered, 300, T0) == 200
    assert wait_before_switch(lowered, 100, T0) == 0
    assert wait_before_switch(lowered, 30, T0) == 0


def test_diff_names_only_what_changes() -> None:
    old = RRset.of(300, ["192.0.2.2"])
    current: dict[str, RRset | None] = {
        "same.gov.vn": old,
        "moved.gov.vn": old,
        "ttl.gov.vn": old,
        "new.gov.vn": None,
    }
    desired = {
        "same.gov.vn": old,
        "moved.gov.vn": RRset.of(300, ["10.0.0.1"]),
        "ttl.gov.vn": RRset.of(30, ["192.0.2.2"]),
        "new.gov.vn": RRset.of(30, ["10.0.0.2"]),
    }
    changes = diff(current, desired)
    assert [c.name for c in changes] == ["moved.gov.vn", "new.gov.vn", "ttl.gov.vn"]
    assert changes[1].before is None
    # Order of values does not make a change.
    assert diff({"x": RRset.of(5, ["2", "1"])}, {"x": RRset.of(5, ["1", "2"])}) == []


def test_lab_zones_hold_every_host_and_all_63_old_portals(lab) -> None:  # type: ignore[no-untyped-def]
    zones = lab_zones(lab)
    hosts = {r.name: r.value for r in zones[LAB_ZONE]}
    assert hosts[f"hue-procedures.{LAB_ZONE}"] == "10.213.46.74"
    assert hosts[f"dns.{LAB_ZONE}"] == "10.213.0.15"
    assert len(hosts) == len(lab.hosts())
    portals = zones[LEGACY_ZONE]
    assert len(portals) == len(legacy_provinces()) == 63
    assert len({r.name for r in portals}) == 63
    assert all(r.name.endswith("." + LEGACY_ZONE) and r.ttl == MOVING_TTL for r in portals)
    by_name = {r.name: r.value for r in portals}
    assert by_name["dichvucong.hagiang.gov.vn"] == "192.0.2.2"  # old code 02, outside the lab


def test_moves_point_the_old_portals_at_the_merged_provinces_front(lab) -> None:  # type: ignore[no-untyped-def]
    moves = moves_for(lab, "tuyen_quang")
    assert {m.name for m in moves} == {"dichvucong.hagiang.gov.vn", "dichvucong.tuyenquang.gov.vn"}
    assert all(m.new == ("10.213.8.74",) and m.zone == LEGACY_ZONE for m in moves)
    with pytest.raises(KeyError):
        moves_for(lab, "atlantis")


def test_state_round_trips_and_a_bad_file_is_named(tmp_path: Path) -> None:
    state = st.SwitchState(
        "hue", {"a.gov.vn": RRset.of(300, ["192.0.2.1"])}, {"a.gov.vn": "gov.vn"}
    )
    state.lowered_at = T0
    st.save(tmp_path, state)
    back = st.load(tmp_path, "hue")
    assert back.old == state.old and back.zones == state.zones and back.lowered_at == T0
    assert st.load(tmp_path, "hanoi").old == {}  # nothing recorded yet
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.json"):
        st.load(tmp_path, "bad")
    assert LOW_TTL < MOVING_TTL
