"""The switch on the wire: RFC 2136 updates signed with TSIG, checks at the authoritative
server and through a resolver (dnspython). Never a zone file: the production DNS operator's
server accepts the same updates (Designate's MiniDNS secondaries, BIND, PowerDNS, Knot).

Each update carries a prerequisite (RFC 2136 §2.4.2: the RRset holds exactly these values),
so the cutover only ever replaces what it recorded, and a record someone else changed
meanwhile stops the step instead of being overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.resolver
import dns.tsig
import dns.tsigkeyring
import dns.update

from govops.dns import state as st
from govops.dns.records import LOW_TTL, Move, RRset, wait_before_switch
from govops.errors import GovopsError, InputError

TSIG_ALGORITHM = "hmac-sha256"
TSIG_NAME = "govops-cutover"


class DnsError(GovopsError):
    """The server refused, did not answer, or answers other than expected (exit 1)."""


@dataclass(frozen=True)
class Server:
    address: str
    port: int = 53
    timeout: float = 5.0


@dataclass(frozen=True)
class Tsig:
    name: str
    secret: str  # base64
    algorithm: str = TSIG_ALGORITHM

    @staticmethod
    def from_file(path: Path, name: str = TSIG_NAME) -> Tsig:
        """The key's secret, the first word of the file (the form Ansible's password lookup
        writes, and a vault-decrypted file's)."""
        try:
            words = path.read_text(encoding="utf-8").split()
        except OSError as exc:
            raise InputError(path, "", "a readable TSIG key file", got=exc.strerror) from None
        if not words:
            raise InputError(path, "", "a base64 TSIG secret", got="an empty file")
        return Tsig(name, words[0])

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        key = dns.tsig.Key(self.name, self.secret, self.algorithm)
        return {key.name: key}


def query(server: Server, name: str, recursive: bool = False) -> RRset | None:
    """The A RRset of `name` as `server` answers (TCP for an authoritative server, so no
    truncation; UDP with recursion desired for a resolver). None: no such records."""
    msg = dns.message.make_query(name, dns.rdatatype.A)
    try:
        if recursive:
            resp = dns.query.udp(msg, server.address, port=server.port, timeout=server.timeout)
        else:
            msg.flags &= ~dns.flags.RD
            resp = dns.query.tcp(msg, server.address, port=server.port, timeout=server.timeout)
    except (dns.exception.DNSException, OSError) as exc:
        raise DnsError(f"{server.address}:{server.port} did not answer for {name}: {exc}") from exc
    rcode = resp.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return None
    if rcode != dns.rcode.NOERROR:
        raise DnsError(f"{server.address}:{server.port} answered {dns.rcode.to_text(rcode)}")
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.A:
            return RRset.of(rrset.ttl, [r.address for r in rrset])
    return None


def zone_of(server: Server, name: str) -> str:
    """The zone `name` lives in at `server`: an update must name it (RFC 2136 §2.3), and a
    DNS operator's zones need not be the lab's (`gov.vn` here, `hagiang.gov.vn` there). The
    server says so in one query: the SOA is the answer at a zone's apex, else in the
    authority section of its reply."""
    msg = dns.message.make_query(name, dns.rdatatype.SOA)
    msg.flags &= ~dns.flags.RD
    try:
        resp = dns.query.tcp(msg, server.address, port=server.port, timeout=server.timeout)
    except (dns.exception.DNSException, OSError) as exc:
        raise DnsError(f"{server.address}:{server.port} did not answer for {name}: {exc}") from exc
    for rrset in (*resp.answer, *resp.authority):
        if rrset.rdtype == dns.rdatatype.SOA:
            return str(rrset.name.to_text(omit_final_dot=True))
    raise DnsError(f"{server.address}:{server.port} is not authoritative for {name}")


def _rdataset(rr: RRset) -> list[dns.rdtypes.IN.A.A]:
    a = dns.rdtypes.IN.A.A
    return [a(dns.rdataclass.IN, dns.rdatatype.A, v) for v in rr.values]  # type: ignore[no-untyped-call]


def replace(
    server: Server, tsig: Tsig, zone: str, name: str, want: RRset, expect: RRset | None
) -> None:
    """Replace `name`'s A RRset by `want`, only if it holds exactly `expect`'s values."""
    upd = dns.update.UpdateMessage(zone, keyring=tsig.keyring(), keyalgorithm=tsig.algorithm)
    owner = dns.name.from_text(name)
    if expect is None:
        upd.absent(owner, dns.rdatatype.A)
    else:
        upd.present(owner, *_rdataset(RRset.of(0, expect.values)))
    upd.replace(owner, want.ttl, *_rdataset(want))
    try:
        resp = dns.query.tcp(upd, server.address, port=server.port, timeout=server.timeout)
    except dns.tsig.PeerError as exc:  # the server answered BADSIG/BADKEY, unsigned
        raise DnsError(f"update of {name}: the TSIG key was refused ({exc})") from exc
    except (dns.exception.DNSException, OSError) as exc:
        raise DnsError(f"update of {name} at {server.address}:{server.port}: {exc}") from exc
    if resp.rcode() != dns.rcode.NOERROR:
        why = dns.rcode.to_text(resp.rcode())
        hint = {
            "NXRRSET": "the record no longer holds what was recorded (changed by someone else?)",
            "NOTAUTH": "the TSIG key was refused, or the server is not authoritative",
            "REFUSED": "the server's update-policy does not grant this key the name",
        }.get(why, "")
        raise DnsError(f"update of {name} refused: {why}" + (f" ({hint})" if hint else ""))


def _current(server: Server, move: Move) -> RRset:
    rr = query(server, move.name)
    if rr is None:
        raise DnsError(f"{move.name} has no A record at {server.address}: nothing to move")
    return rr


def lower_ttl(
    server: Server, tsig: Tsig, state_dir: Path, province: str, moves: list[Move], low: int
) -> st.SwitchState:
    """Record each moving name's RRset (once), then lower its TTL, values unchanged."""
    state = st.load(state_dir, province)
    for move in moves:
        rr = _current(server, move)
        if move.name not in state.old:
            state.old[move.name] = rr
            state.zones[move.name] = zone_of(server, move.name)
    st.save(state_dir, state)  # the old records are on disk before the first change
    for move in moves:
        rr = _current(server, move)
        if rr.ttl > low:
            zone = state.zones[move.name]
            replace(server, tsig, zone, move.name, RRset.of(low, rr.values), rr)
    if state.lowered_at is None:
        state.lowered_at = st.now()
        st.save(state_dir, state)
    return state


def seconds_to_wait(state: st.SwitchState) -> float:
    if state.lowered_at is None:
        raise DnsError(f"{state.province}: the TTLs were never lowered (run lower-ttl first)")
    longest = max((r.ttl for r in state.old.values()), default=0)
    return wait_before_switch(state.lowered_at, longest, st.now())


def switch(
    server: Server,
    tsig: Tsig,
    state_dir: Path,
    province: str,
    moves: list[Move],
    wait: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> st.SwitchState:
    """Point each moving name at its new values (TTL kept low). Refused until the old TTL has
    run out since the lowering (or waits, with `wait`). Idempotent: a name already switched
    is left alone."""
    state = st.load(state_dir, province)
    left = seconds_to_wait(state)
    if left > 0 and not wait:
        raise DnsError(
            f"{province}: the old TTL runs out in {left:.0f} s after the lowering; "
            "switching now would leave resolvers with the old answer (wait, or --wait)"
        )
    if left > 0:
        sleep(left)
    for move in moves:
        rr = _current(server, move)
        want = RRset.of(min(rr.ttl, LOW_TTL), move.new)
        if rr.values == want.values:
            continue
        old = state.old.get(move.name)
        if old is None:
            raise DnsError(f"{move.name}: no recorded old RRset (run lower-ttl first)")
        replace(server, tsig, state.zones[move.name], move.name, want, rr)
    state.switched_at = st.now()
    state.rolled_back_at = None
    st.save(state_dir, state)
    return state


def rollback(server: Server, tsig: Tsig, state_dir: Path, province: str) -> st.SwitchState:
    """Put back every recorded RRset as it was before the cutover (values and TTL)."""
    state = st.load(state_dir, province)
    for name, old in sorted(state.old.items()):
        rr = query(server, name)
        if rr == old:
            continue
        replace(server, tsig, state.zones[name], name, old, rr)
    state.rolled_back_at = st.now()
    # The old TTLs are back: a switch after this must outwait them again from a new lowering.
    state.lowered_at = None
    st.save(state_dir, state)
    return state


def verify(
    server: Server,
    expected: dict[str, tuple[str, ...]],
    resolver: Server | None = None,
    within: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    max_ttl: int | None = None,
) -> dict[str, str]:
    """Each name answers its expected values at the authoritative server and, if given,
    through the resolver, which may keep its cached answer up to `within` seconds (the TTL the
    old answer carried); with `max_ttl`, the server's TTL is at most that (lowered). Returns the
    problems by name (empty: verified)."""
    deadline = time.monotonic() + within
    while True:
        problems: dict[str, str] = {}
        for name, values in sorted(expected.items()):
            want = tuple(sorted(values))
            got = query(server, name)
            if got is None or got.values != want:
                problems[name] = f"authoritative answers {got.values if got else 'nothing'}"
                continue
            if max_ttl is not None and got.ttl > max_ttl:
                problems[name] = f"authoritative TTL is {got.ttl} s, expected at most {max_ttl}"
                continue
            if resolver is not None:
                seen = query(resolver, name, recursive=True)
                if seen is None or seen.values != want:
                    problems[name] = f"resolver answers {seen.values if seen else 'nothing'}"
        if not problems or time.monotonic() >= deadline:
            return problems
        sleep(0.2)
