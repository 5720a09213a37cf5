"""Lab proof of the playbooks: `govops converge` on the default lab (3 provinces, 23 hosts).

All on the session's converged lab (tests/integration/conftest.py): a throwaway environment
converged once with playbooks/site.yml. Here: that converge failed nowhere; converging again,
and in check mode, changes nothing on any host; every stand-in answers healthy through its
nginx over TLS (verified against the lab CA the roles distributed); each province's database
is reachable from its own province's app hosts and from no one else.

These run first among the lab proofs (file name order) and stop nothing.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from govops.ansible.converge import ConvergeResult
from tests.integration.conftest import ConvergedLab

pytestmark = [pytest.mark.lab, pytest.mark.lab_proof]

CA_ON_HOSTS = "/etc/ssl/govops/ca.crt"
PROBE_FROM = "monitor"
# A TCP connect from inside a host: "open", or "closed" (refused, or dropped by a firewall).
TCP_PROBE = (
    "import socket, sys\n"
    "s = socket.socket(); s.settimeout(3)\n"
    "print('open' if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 'closed')\n"
)


@dataclass(frozen=True)
class Host:
    name: str
    ip: str
    province: str | None
    system: str | None
    groups: tuple[str, ...]


def lab_hosts(lab: ConvergedLab) -> dict[str, Host]:
    """The running hosts of the lab, with their address, province and groups (topology.yml)."""
    topology = yaml.safe_load((lab.lab.inventory / "topology.yml").read_text(encoding="utf-8"))
    running = set(lab.lab.running_hosts())
    return {
        row["name"]: Host(
            row["name"],
            str(row["ip"]),
            row.get("province"),
            row.get("system"),
            tuple(row["groups"]),
        )
        for row in topology["hosts"]
        if row["name"] in running
    }


def converge_logged(lab: ConvergedLab, **kwargs: Any) -> tuple[ConvergeResult, list[str]]:
    lines: list[str] = []
    return lab.converge(echo=lines.append, **kwargs), lines


def assert_nothing_changed(result: ConvergeResult, lines: list[str], what: str) -> None:
    tail = "\n".join(lines[-40:])
    # The hosts' own messages: a recap's tail does not say why a host failed or was unreachable.
    why = "\n".join(line for line in lines if line.startswith(("fatal:", "failed:")))
    assert result.ok, f"{what}: failed on {result.failed_hosts}:\n{why}\n...\n{tail}"
    changed = {h: r.changed for h, r in result.recap.items() if r.changed}
    assert not changed, (
        f"{what} changed {changed} (recap changed=); tasks that changed: "
        f"{json.dumps(result.changes, indent=1, ensure_ascii=False)}"
    )


def test_the_first_converge_reached_every_host_and_failed_nowhere(
    converged_lab: ConvergedLab,
) -> None:
    first = converged_lab.first
    running = set(converged_lab.lab.running_hosts())
    # Every province's five systems and database, and the monitor and DNS, at least (standbys,
    # the old provinces' databases and the backup host come with later issues).
    parts = ("procedures", "documents", "lgsp", "reporting", "meetings", "db")
    expected = {f"{p.replace('_', '-')}-{part}" for p in converged_lab.provinces for part in parts}
    missing = (expected | {"monitor", "dns"}) - running
    assert not missing, f"the lab runs {sorted(running)}, without {sorted(missing)}"
    assert set(first.recap) == running, (
        f"hosts in the recap {sorted(first.recap)} are not the lab's {sorted(running)}"
    )
    assert first.ok and not first.failed_hosts, f"failed or unreachable: {first.failed_hosts}"
    # The first run is a real one: every host was changed by it.
    assert sorted(first.changed_hosts) == sorted(running)


def test_a_second_converge_changes_nothing_on_any_host(converged_lab: ConvergedLab) -> None:
    second, lines = converge_logged(converged_lab)
    assert set(second.recap) == set(converged_lab.first.recap)
    assert_nothing_changed(second, lines, "the second converge")


def test_check_mode_on_the_converged_lab_reports_no_change(converged_lab: ConvergedLab) -> None:
    check, lines = converge_logged(converged_lab, check=True)
    assert "--check" in check.command
    assert set(check.recap) == set(converged_lab.first.recap)
    assert_nothing_changed(check, lines, "converge --check")


def test_every_standin_answers_healthy_through_nginx_over_tls(converged_lab: ConvergedLab) -> None:
    hosts = lab_hosts(converged_lab)
    # The CA the hosts verify with is the lab's own, made on the controller by playbooks/pki.yml.
    lab_ca = (converged_lab.lab.cache / "lab" / "pki" / "ca.crt").read_text(encoding="utf-8")
    on_monitor = converged_lab.exec(PROBE_FROM, "cat", CA_ON_HOSTS)
    assert on_monitor.returncode == 0, f"{PROBE_FROM} has no {CA_ON_HOSTS}: {on_monitor.stderr}"
    assert on_monitor.stdout.strip() == lab_ca.strip()

    fronts = sorted(
        h.name for h in hosts.values() if {"tier_front", "tier_gateway", "national"} & set(h.groups)
    )
    assert len(fronts) == 3 * 5 + 4

    def fetch(host: str, path: str) -> tuple[str, str, int, str]:
        # By host name (the lab's DNS), TLS verified against the CA: no -k, no --resolve.
        out = converged_lab.exec(
            PROBE_FROM,
            "curl", "-sS", "--max-time", "10", "--cacert", CA_ON_HOSTS,
            "-w", "\n%{http_code}", f"https://{host}{path}",
        )  # fmt: skip
        body, _, code = out.stdout.rpartition("\n")
        return (
            host,
            path,
            int(code or 0) if out.returncode == 0 else -out.returncode,
            body or out.stderr,
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(
                lambda hp: fetch(*hp), [(h, p) for h in fronts for p in ("/healthz", "/readyz")]
            )
        )
    bad = [a for a in answers if a[2] != 200]
    assert not bad, f"not healthy through nginx over TLS from {PROBE_FROM}: {bad}"
    for host, path, _, body in answers:
        data = json.loads(body)
        if path == "/healthz":
            assert data["status"] == "ok" and data["standin"] is True, (host, data)
        else:
            assert data["status"] == "ready", (host, data)
            # Ready means its state store answers: the province's PostgreSQL (over TLS) for
            # every provincial system, a local SQLite for the national stand-ins.
            expected = "sqlite" if "national" in hosts[host].groups else "postgresql"
            assert data["database"] == expected, (host, data)


def test_each_database_is_reachable_only_from_its_provinces_app_hosts(
    converged_lab: ConvergedLab,
) -> None:
    hosts = lab_hosts(converged_lab)
    provinces = {p: converged_lab.province(p) for p in converged_lab.provinces}
    app_hosts = {p: list(v["app_hosts"]) for p, v in provinces.items()}
    probes: list[tuple[str, str, str]] = []  # (database host, from host, expected)
    for codename, data in provinces.items():
        db = str(data["db_host"])
        probes += [(db, source, "open") for source in app_hosts[codename]]
        for other, sources in app_hosts.items():
            if other != codename:
                probes += [(db, source, "closed") for source in sources]
        probes.append((db, PROBE_FROM, "closed"))

    def probe(item: tuple[str, str, str]) -> tuple[str, str, str, str]:
        db, source, expected = item
        out = converged_lab.exec(source, "python3", "-c", TCP_PROBE, hosts[db].ip, "5432")
        return db, source, expected, out.stdout.strip() or f"error: {out.stderr.strip()}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(probe, probes))
    wrong = [
        f"{src} -> {db}:5432 {got} (expected {exp})" for db, src, exp, got in results if got != exp
    ]
    assert not wrong, "database reachability:\n" + "\n".join(wrong)
    # Both answers occurred for every database: the probe can tell them apart.
    for db in {r[0] for r in results}:
        assert {r[3] for r in results if r[0] == db} == {"open", "closed"}
