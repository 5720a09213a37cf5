"""What the lab's DNS serves and what a province's cutover moves; TTL plans and diffs (pure).

Zones (lab): `lab.gov.example` holds every estate host (the names hosts already use, found by
the resolver's search list) and `gov.vn` the 63 old provincial portals' domains
(`legacy_portal_domain`). Before the cutover an old portal's name points at its old address;
in the lab that is TEST-NET-1 (192.0.2.<old code>, RFC 5737): the old portals are outside
the lab and nothing answers there. The switch points it at the merged province's front (the
procedures host, where roles/legacy_portals serves the notice and then the 301).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import IPv4Address

from govops.registry.estate import Estate
from govops.registry.geography import merged_from
from govops.registry.legacy_portals import legacy_portal_domain

LAB_ZONE = "lab.gov.example"
LEGACY_ZONE = "gov.vn"
# TTLs of the lab's seed: host names change rarely; the old portals' names will move, and
# their TTL is what the switch must outwait after the lowering (2 min keeps a rehearsal short).
HOST_TTL = 3600
MOVING_TTL = 120
# The TTL a moving record carries from the lowering until hypercare ends.
LOW_TTL = 30
OLD_PORTAL_NET = "192.0.2.0"  # TEST-NET-1: the old portals' addresses, outside the lab


@dataclass(frozen=True)
class RRset:
    """One name's A records as the server holds them."""

    ttl: int
    values: tuple[str, ...]  # sorted

    @staticmethod
    def of(ttl: int, values: list[str] | tuple[str, ...]) -> RRset:
        return RRset(int(ttl), tuple(sorted(values)))


@dataclass(frozen=True)
class Record:
    zone: str
    name: str  # absolute, without the final dot
    ttl: int
    value: str
    type: str = "A"


@dataclass(frozen=True)
class Move:
    """A name the cutover points elsewhere: from its old values to its new ones."""

    zone: str
    name: str
    new: tuple[str, ...]
    type: str = "A"


@dataclass(frozen=True)
class TtlStep:
    name: str
    current_ttl: int
    low_ttl: int
    lower_by: datetime  # lowered later than this, a resolver may still hold the old TTL's answer


@dataclass(frozen=True)
class Change:
    name: str
    before: RRset | None
    after: RRset


def old_portal_address(old_code: str) -> str:
    return str(IPv4Address(OLD_PORTAL_NET) + int(old_code))


def front_host(estate: Estate, province: str) -> str:
    """The host that answers a province's public names: its procedures front."""
    hosts = [h for h in estate.hosts({province}) if h.system == "procedures"]
    if not hosts:
        raise KeyError(f"no procedures host for province {province!r}")
    return hosts[0].name


def lab_zones(estate: Estate) -> dict[str, list[Record]]:
    """The lab server's seed, by zone."""
    hosts = [Record(LAB_ZONE, f"{h.name}.{LAB_ZONE}", HOST_TTL, str(h.ip)) for h in estate.hosts()]
    portals = []
    for pe in estate.provinces.values():
        for lp in merged_from(pe.codename):
            name = legacy_portal_domain(lp)
            portals.append(Record(LEGACY_ZONE, name, MOVING_TTL, old_portal_address(lp.old_code)))
    return {LAB_ZONE: hosts, LEGACY_ZONE: sorted(portals, key=lambda r: r.name)}


def moves_for(estate: Estate, province: str) -> list[Move]:
    """The names province `province`'s cutover moves: its old provinces' portal domains, to
    its front's address."""
    if province not in estate.provinces:
        raise KeyError(f"unknown province {province!r}")
    front = front_host(estate, province)
    address = next(str(h.ip) for h in estate.hosts({province}) if h.name == front)
    return [Move(LEGACY_ZONE, legacy_portal_domain(lp), (address,)) for lp in merged_from(province)]


def plan_ttl(
    current: dict[str, RRset], switch_at: datetime, low_ttl: int = LOW_TTL, margin_s: int = 0
) -> list[TtlStep]:
    """For each name that moves, the lowering's deadline: the switch time less the current
    TTL (a resolver that asked just before the lowering keeps the answer that long) and a
    margin. A name already at or under `low_ttl` needs nothing: it is left out."""
    steps = []
    for name, rrset in sorted(current.items()):
        if rrset.ttl <= low_ttl:
            continue
        lower_by = switch_at - timedelta(seconds=rrset.ttl + margin_s)
        steps.append(TtlStep(name, rrset.ttl, low_ttl, lower_by))
    return steps


def lowering_deadline(steps: list[TtlStep], switch_at: datetime) -> datetime:
    """The one deadline of the lowering step: the earliest of its names'."""
    return min((s.lower_by for s in steps), default=switch_at)


def wait_before_switch(lowered_at: datetime, old_ttl: int, now: datetime) -> float:
    """Seconds still to wait after a lowering at `lowered_at` before the old TTL has run out
    everywhere (0: switch now)."""
    ready = lowered_at + timedelta(seconds=old_ttl)
    return max(0.0, (ready - now).total_seconds())


def diff(current: dict[str, RRset | None], desired: dict[str, RRset]) -> list[Change]:
    """The names whose records must change to become `desired` (values or TTL differ)."""
    return [
        Change(name, current.get(name), want)
        for name, want in sorted(desired.items())
        if current.get(name) != want
    ]
