"""The DNS switch against a real BIND 9 (Debian's named) started here on loopback, and a
second named as a caching resolver in front of it: lower the TTL, switch by RFC 2136 + TSIG,
verify at both, roll back, observed with dnspython. No lab needed.

Measured: the time from the switch's start to every record verified through the resolver
(printed; run with -s to see it).
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from govops.dns import state as st
from govops.dns import update
from govops.dns.records import Move, RRset
from govops.dns.update import DnsError, Server, Tsig

# bind9 comes with scripts/install-system-deps.sh (make test runs it); missing, the test fails.
NAMED = shutil.which("named") or "/usr/sbin/named"

ZONE = "gov.vn"
OLD = {"dichvucong.hagiang.gov.vn": "192.0.2.2", "dichvucong.tuyenquang.gov.vn": "192.0.2.8"}
NEW = ("10.213.8.10",)
SEED_TTL = 3  # the "old" TTL the lowering must outwait, kept short for the test
LOW = 1


def free_port() -> int:
    # The same port free for UDP and TCP: DNS listens on both.
    for _ in range(50):
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no free port for both UDP and TCP")


def _start(conf: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    # -g: foreground, logs to stderr; -c: our config; root runs it without -u (no bind user).
    proc = subprocess.Popen(
        [NAMED, "-g", "-c", str(conf)], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"named exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"named did not listen: {log.read_text()[-2000:]}")


@dataclass
class Bind:
    auth: Server
    resolver: Server
    tsig: Tsig
    dir: Path


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[Bind]:
    secret = base64.b64encode(os.urandom(32)).decode()
    tsig = Tsig("govops-cutover", secret)
    auth_port, res_port = free_port(), free_port()
    adir, rdir = tmp_path / "auth", tmp_path / "resolver"
    adir.mkdir()
    rdir.mkdir()
    records = "\n".join(f"{n}. {SEED_TTL} IN A {a}" for n, a in OLD.items())
    (adir / "gov.vn.zone").write_text(
        f"$TTL 3600\n@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 {LOW}\n"
        f"@ IN NS ns.{ZONE}.\nns IN A 127.0.0.1\n{records}\n"
    )
    common = 'pid-file "{d}/named.pid"; session-keyfile "{d}/session.key";'
    (adir / "named.conf").write_text(
        f'key "govops-cutover" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'
        f'options {{ directory "{adir}"; {common.format(d=adir)}\n'
        f"  listen-on port {auth_port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n"
        "  recursion no; dnssec-validation no; };\n"
        f'zone "{ZONE}" {{ type primary; file "{adir}/gov.vn.zone";\n'
        "  update-policy { grant govops-cutover zonesub A; }; };\n"
    )
    (rdir / "named.conf").write_text(
        f'options {{ directory "{rdir}"; {common.format(d=rdir)}\n'
        f"  listen-on port {res_port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n"
        "  recursion yes; allow-recursion { 127.0.0.1; }; dnssec-validation no; };\n"
        f'zone "{ZONE}" {{ type forward; forward only;\n'
        f"  forwarders {{ 127.0.0.1 port {auth_port}; }}; }};\n"
    )
    procs = [
        _start(adir / "named.conf", auth_port, tmp_path / "auth.log"),
        _start(rdir / "named.conf", res_port, tmp_path / "resolver.log"),
    ]
    try:
        yield Bind(Server("127.0.0.1", auth_port), Server("127.0.0.1", res_port), tsig, tmp_path)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _moves() -> list[Move]:
    return [Move(ZONE, name, NEW) for name in OLD]


def test_switch_and_rollback_observed_at_server_and_resolver(bind: Bind) -> None:
    state_dir = bind.dir / "state"
    # A resolver caches the old answer with the old TTL before anything happens.
    for name, addr in OLD.items():
        assert update.query(bind.resolver, name, recursive=True) == RRset.of(SEED_TTL, [addr])

    state = update.lower_ttl(bind.auth, bind.tsig, state_dir, "tuyen_quang", _moves(), LOW)
    for name, addr in OLD.items():
        assert update.query(bind.auth, name) == RRset.of(LOW, [addr])
    # Recorded durably, before the change, as they were.
    on_disk = st.load(state_dir, "tuyen_quang")
    assert on_disk.old == {n: RRset.of(SEED_TTL, [a]) for n, a in OLD.items()}
    assert state.lowered_at is not None

    # Too early: the old TTL has not run out since the lowering.
    with pytest.raises(DnsError, match="old TTL runs out"):
        update.switch(bind.auth, bind.tsig, state_dir, "tuyen_quang", _moves())

    started = time.monotonic()
    update.switch(bind.auth, bind.tsig, state_dir, "tuyen_quang", _moves(), wait=True)
    switched = time.monotonic()
    problems = update.verify(
        bind.auth, {n: NEW for n in OLD}, resolver=bind.resolver, within=LOW + 2
    )
    verified = time.monotonic()
    assert problems == {}
    print(
        f"\nDNS switch: {len(OLD)} records, switch {switched - started:.2f} s "
        f"(incl. waiting out the old TTL), switch→verified via resolver {verified - switched:.2f} s"
    )
    for name in OLD:
        assert update.query(bind.auth, name) == RRset.of(LOW, NEW)
    # Re-running the switch changes nothing and keeps the recorded old RRsets.
    update.switch(bind.auth, bind.tsig, state_dir, "tuyen_quang", _moves())
    assert st.load(state_dir, "tuyen_quang").old == on_disk.old

    update.rollback(bind.auth, bind.tsig, state_dir, "tuyen_quang")
    # The old TTL is back: switching again needs a new lowering first.
    with pytest.raises(DnsError, match="never lowered"):
        update.switch(bind.auth, bind.tsig, state_dir, "tuyen_quang", _moves())
    for name, addr in OLD.items():
        assert update.query(bind.auth, name) == RRset.of(SEED_TTL, [addr])
    problems = update.verify(
        bind.auth, {n: (a,) for n, a in OLD.items()}, resolver=bind.resolver, within=LOW + 2
    )
    assert problems == {}


def test_wrong_key_and_foreign_change_are_refused(bind: Bind) -> None:
    name = next(iter(OLD))
    # The zone a name lives in, as the server says (at the apex: its own).
    assert update.zone_of(bind.auth, name) == ZONE
    assert update.zone_of(bind.auth, ZONE) == ZONE
    with pytest.raises(DnsError, match="not authoritative"):
        update.zone_of(bind.auth, "example.org")
    bad = Tsig("govops-cutover", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(DnsError, match="TSIG key was refused"):
        update.replace(bind.auth, bad, ZONE, name, RRset.of(LOW, NEW), RRset.of(0, [OLD[name]]))
    assert update.query(bind.auth, name) == RRset.of(SEED_TTL, [OLD[name]])
    # The prerequisite: the record does not hold what we expect -> nothing is changed.
    with pytest.raises(DnsError, match="NXRRSET"):
        update.replace(bind.auth, bind.tsig, ZONE, name, RRset.of(LOW, NEW), RRset.of(0, NEW))
    assert update.query(bind.auth, name) == RRset.of(SEED_TTL, [OLD[name]])


def test_cli_switches_a_lab_province_seeded_from_the_registry(
    bind: Bind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`govops dns` end to end for tuyen_quang (two old portals): the zone seeded from the same
    records the role serves (TTL shortened for the test), the lab's moves, exit codes."""
    from click.testing import CliRunner

    from govops.cli import main
    from govops.dns import records
    from govops.dns.records import LEGACY_ZONE, lab_zones, moves_for
    from govops.paths import repo_root
    from govops.registry.estate import estate_path, load_estate

    lab = load_estate(estate_path(repo_root() / "inventories", "lab"))
    seed = {r.name: r.value for r in lab_zones(lab)[LEGACY_ZONE]}
    moves = moves_for(lab, "tuyen_quang")
    # The fixture's zone holds these two names as the lab's seed does (its TTL shortened).
    assert {m.name: seed[m.name] for m in moves} == OLD
    key = tmp_path / "tsig.key"
    key.write_text(bind.tsig.secret + "\n")
    monkeypatch.setenv("GOVOPS_DNS_SERVER", f"127.0.0.1:{bind.auth.port}")
    monkeypatch.setenv("GOVOPS_DNS_KEY_FILE", str(key))
    monkeypatch.setenv("GOVOPS_DNS_RESOLVER", f"127.0.0.1:{bind.resolver.port}")
    # As the runbook engine runs it: the run's inventory named in the environment.
    monkeypatch.setenv("GOVOPS_INVENTORY", str(repo_root() / "inventories" / "lab"))
    common = ["--env", "lab", "--province", "tuyen_quang", "--state-dir", str(tmp_path / "s")]
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        res = runner.invoke(main, ["dns", *args])
        return res.exit_code, res.output

    code, out = run("plan", *common[:4], "--switch-at", "2025-06-28T13:00+0700", "--low-ttl", "1")
    assert code == 0, out
    # Vietnam's time: the switch at 13:00 +0700, the lowering one old TTL (3 s) before.
    assert "lower the TTL of 2 record(s) by 2025-06-28 12:59:57 +0700" in out, out
    assert "dichvucong.hagiang.gov.vn: 192.0.2.2 ttl 3 → 10.213.8.74 ttl 1" in out, out
    code, out = run("lower-ttl", *common, "--low-ttl", "1")
    assert code == 0, out
    code, out = run("switch", *common)
    assert code == 1 and "old TTL runs out" in out  # too early: refused, nothing changed
    code, out = run("switch", *common, "--wait")
    assert code == 0, out
    code, out = run("verify", *common, "--expect", "new")
    assert code == 0, out
    # The rehearsal run again on a province already switched: its lowering step passes (the
    # names answer their new values at the low TTL), nothing moves back.
    code, out = run("lower-ttl", *common, "--low-ttl", "1")
    assert code == 0, out
    code, out = run("verify", *common, "--expect", "lowered")
    assert code == 0, out
    for m in moves:
        assert update.query(bind.auth, m.name) == RRset.of(1, m.new)
        assert update.query(bind.resolver, m.name, recursive=True) == RRset.of(1, m.new)
    code, out = run("rollback", *common)
    assert code == 0, out
    code, out = run("verify", *common)  # auto: rolled back -> the old records
    assert code == 0, out
    for m in moves:
        assert update.query(bind.auth, m.name) == RRset.of(SEED_TTL, [OLD[m.name]])
    # Switching again after the rollback: lowered anew, then switched once the old TTL ran out.
    code, out = run("switch", *common, "--lower-first", "--wait")
    assert code == 0, out
    for m in moves:
        assert update.query(bind.auth, m.name) == RRset.of(min(SEED_TTL, records.LOW_TTL), m.new)
    code, out = run("rollback", *common)
    assert code == 0, out
    code, out = run("switch", "--env", "lab", "--province", "atlantis")
    assert code == 2 and "--province" in out
    code, out = run("switch", "--env", "production", "--province", "hue")
    assert code == 2 and "GOVOPS_INVENTORY" in out  # the inventory is lab's, not production's
