"""Lab proof of the DNS switch: on the session's converged lab, the `dns` host (BIND) serves
the old portals' names; `govops dns` lowers, switches and rolls back Tuyên Quang's (Hà Giang,
Tuyên Quang) by RFC 2136 + TSIG, observed with dnspython against the lab's server and, through
a lab host's own resolver (resolv.conf from the common role), with getent.

Measured: switch → every record verified at the server and through the resolver (printed).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from govops.dns import update
from govops.dns.records import LAB_ZONE, moves_for, old_portal_address
from govops.registry.estate import load_estate
from govops.registry.legacy_portals import legacy_portal_domain
from tests.integration.conftest import ConvergedLab

REPO = Path(__file__).resolve().parents[2]
PROVINCE = "tuyen_quang"
OBSERVER = "tuyen-quang-documents"  # any lab host: it resolves through the dns host

pytestmark = [pytest.mark.lab, pytest.mark.lab_proof]


def dns_cli(lab: ConvergedLab, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = lab.lab.environ()
    argv = [sys.executable, "-m", "govops.cli", "dns", *args]
    argv += ["--env", lab.lab.env, "--province", PROVINCE, "--state-dir", str(state)]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def getent(lab: ConvergedLab, name: str) -> set[str]:
    out = lab.exec(OBSERVER, "getent", "ahostsv4", name)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_dns_switch_and_rollback_on_the_lab(converged_lab: ConvergedLab, tmp_path: Path) -> None:
    lab = converged_lab
    estate = load_estate(lab.lab.inventory / "estate.yml")
    topology = yaml.safe_load((lab.lab.inventory / "topology.yml").read_text(encoding="utf-8"))
    dns_ip = next(h["ip"] for h in topology["hosts"] if h["name"] == "dns")
    server = update.Server(dns_ip)
    moves = moves_for(estate, PROVINCE)
    assert {m.name for m in moves} == {
        legacy_portal_domain("02"),
        legacy_portal_domain("08"),
    }
    # Seeded: the old portals' addresses (outside the lab), and every host by name.
    for m in moves:
        rr = update.query(server, m.name)
        assert rr is not None and rr.values[0].startswith("192.0.2."), rr
    host = update.query(server, f"{OBSERVER}.{LAB_ZONE}")
    assert host is not None
    # The host's resolver goes to the dns host (the name is in no /etc/hosts).
    assert getent(lab, moves[0].name) == set(update.query(server, moves[0].name).values)  # type: ignore[union-attr]

    state = tmp_path / "dns-state"
    done = dns_cli(lab, state, "lower-ttl")
    assert done.returncode == 0, done.stdout + done.stderr
    started = time.monotonic()
    done = dns_cli(lab, state, "switch", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    switched = time.monotonic()
    try:
        done = dns_cli(lab, state, "verify", "--expect", "new")
        assert done.returncode == 0, done.stdout + done.stderr
        deadline = time.monotonic() + 60
        while any(getent(lab, m.name) != set(m.new) for m in moves):
            assert time.monotonic() < deadline, {m.name: getent(lab, m.name) for m in moves}
            time.sleep(1)
        verified = time.monotonic()
        print(
            f"\nlab DNS switch ({PROVINCE}, {len(moves)} records): wait+switch "
            f"{switched - started:.1f} s, switch→verified (server, resolver, a host) "
            f"{verified - switched:.1f} s"
        )
    finally:
        done = dns_cli(lab, state, "rollback")
    assert done.returncode == 0, done.stdout + done.stderr
    done = dns_cli(lab, state, "verify", "--expect", "old")
    assert done.returncode == 0, done.stdout + done.stderr
    for m in moves:
        code = "02" if "hagiang" in m.name else "08"
        rr = update.query(server, m.name)
        assert rr is not None and rr.values == (old_portal_address(code),)
