"""`govops lab rehearse` (`make lab`): the whole rehearsal, one stage after another.

1. hosts: `govops lab up` (the image is built on first use);
2. converge: `govops converge` (playbooks/site.yml: platform, systems, monitoring). A lab of
   more provinces than a wave (the whole nation) grows wave by wave: each wave's hosts start,
   then converge with the national hosts, in one ansible-playbook run per wave (see WAVE);
3. monitoring: wait until the lab's Prometheus sees every system of every province up;
4. cutover: runbooks/rehearsal.yml across the lab's provinces, its manual gates approved by
   the named rehearsal operator, then the readiness report (text, and HTML in the cache);
5. backups: each province's newest backup, its restore drill (the cutover's gate) and its
   standby, as the lab's Prometheus sees them (issue 18);
6. alerts: "alerts firing: N" from the lab's Prometheus (0 expected: a healthy lab is silent).

Each stage is the same command an engineer would type, run as a child process so its own
progress and output show as they are; a stage that fails stops the rehearsal (the later ones
would only fail for the same reason) and the summary says where and how to go on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govops.lab import memory
from govops.lab.paths import LabPaths
from govops.lab.podman import Podman, write_containers_conf
from govops.lab.topology import Topology, select_hosts
from govops.registry.catalog import catalog

REHEARSAL = "runbooks/rehearsal.yml"
UP_QUERY = "province_system:govops_front_up:max == 1"
FIRING_QUERY = 'ALERTS{alertstate="firing"}'
SYSTEMS = 5
# Provinces started and converged together when the lab holds more. One ansible-playbook run
# keeps a Python interpreter on every host it reached until it ends (Mitogen: ~45 MB a host,
# 12 GB for the 274 hosts of the nation in one run, measured), and the backup repository and
# monitoring take in every running province, so a province starts in the wave that converges it.
WAVE = 9
# The lab's controller shares two cores with the hosts it manages; production's does not. Under
# cgroup v1 each of the controller's processes (root cgroup) weighs as much as all the lab's
# containers together (libpod_parent): in the first half of a nation's wave, where the
# controller's work dominates, 18% of the prober's transactions timed out at normal priority,
# 2% at nice 10 (docs/converge-speed.md). The rehearsal runs its commands below the services.
CONTROLLER_NICE = 10
# The readiness report's row for legacy data inheritance (readiness.yml), echoed in the summary.
INHERIT_CHECK = "legacy_data_inherited"
# What the backups stage asks of every province (issue 18), by province.
BACKUP_QUERIES = {
    "backup": "max by (province) (govops_backup_last_success_timestamp_seconds)",
    "drill": "max by (province) (govops_restore_drill_success)",
    "standbys": "max by (province) (govops_pg_replication_standbys_streaming)",
    "lag": "max by (province) (govops_pg_replication_lag_seconds)",
}


@dataclass
class Stage:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class Rehearsal:
    env: str
    provinces: list[str]
    stages: list[Stage] = field(default_factory=list)
    run_id: str | None = None
    report_html: Path | None = None

    @property
    def ok(self) -> bool:
        return bool(self.stages) and all(s.ok for s in self.stages)


def govops(*args: str) -> list[str]:
    return [sys.executable, "-m", "govops.cli", *args]


class Rehearser:
    """Runs the stages; `say` prints a headline before each."""

    def __init__(
        self,
        env: str,
        provinces: Sequence[str],
        approver: str,
        paths: LabPaths,
        say: Callable[[str], None],
        monitoring_timeout: float = 600.0,
        alerts_timeout: float = 300.0,
        backups_timeout: float = 180.0,
        wave: int = WAVE,
        topology: Topology | None = None,
        meminfo: Callable[[], Mapping[str, int]] = memory.read_meminfo,
    ) -> None:
        self.result = Rehearsal(env, list(provinces))
        self.waves = waves(self.result.provinces, wave)
        self.topology = topology  # needed only by a lab of more than one wave
        self.approver = approver
        self.paths = paths
        self.say = say
        self.monitoring_timeout = monitoring_timeout
        self.alerts_timeout = alerts_timeout
        self.backups_timeout = backups_timeout
        self.state = paths.env_dir(env) / "rehearsal.sqlite3"
        self.meminfo = meminfo

    # -- the stages -------------------------------------------------------------------------
    def run(self, until: str = "cutover", start: str = "hosts") -> Rehearsal:
        stages: list[tuple[str, Callable[[], str]]] = [
            ("hosts", self.hosts),
            ("converge", self.converge),
            ("monitoring", self.monitoring),
            ("cutover", self.cutover),
            ("backups", self.backups),
            # The end of a full rehearsal: a healthy lab is silent (issue 17).
            ("alerts", self.alerts),
        ]
        names = [name for name, _ in stages]
        for name, stage in stages[names.index(start) :]:
            self.say(f"── {name} ──")
            started = time.monotonic()
            try:
                detail, ok = stage(), True
            except StageFailed as failed:
                detail, ok = str(failed), False
            self.result.stages.append(Stage(name, ok, time.monotonic() - started, detail))
            if not ok or (name == until and until != "cutover"):
                break
        return self.result

    def hosts(self) -> str:
        tight = self.memory_check()
        self._up(self.waves[0])
        running = self.paths.hosts_limit(self.result.env).read_text(encoding="utf-8").split()
        later = len(self.result.provinces) - len(self.waves[0])
        return (
            f"{len(running)} hosts running"
            + (f" (the first wave; {later} more provinces start in converge)" if later else "")
            + (f"; {tight}" if tight else "")
        )

    def memory_check(self) -> str:
        """Refuse a lab this machine cannot hold before any host starts (the nation's last
        wave, an hour in, is the worst place to find out); a lab that fits only with swap, or
        without the headroom, is said and goes on."""
        if self.topology is None:
            return ""
        limit = self.paths.hosts_limit(self.result.env)
        running = set(limit.read_text(encoding="utf-8").split()) if limit.exists() else set()
        selected = select_hosts(self.topology, self.result.provinces)
        widest = max(len(select_hosts(self.topology, wave)) for wave in self.waves)
        try:
            mem = memory.plan(
                [h for h in selected if h.name not in running], widest, self.meminfo()
            )
        except (OSError, ValueError) as exc:
            return f"memory not checked ({exc})"
        if not mem.possible:
            raise StageFailed(
                f"not enough memory: {mem.describe()}. Rehearse fewer provinces (--provinces), "
                "or add swap first (`make lab-swap`: compressed swap in memory; "
                "docs/converge-speed.md)"
            )
        if mem.fits:
            return ""
        note = f"memory is tight: {mem.describe()}; it will swap or run without headroom"
        sys.stdout.write(f"{note}\n")
        return note

    def converge(self) -> str:
        if len(self.waves) == 1:
            proc = self._call(["converge", "--env", self.result.env], "govops converge")
            return _last_line(proc.stdout) or "converged"
        if self.topology is None:
            raise StageFailed("a lab of several waves needs its topology (a bug)")
        started: list[str] = []
        summaries = []
        for number, wave in enumerate(self.waves, 1):
            started += wave
            self.say(f"── converge: wave {number}/{len(self.waves)}: {', '.join(wave)} ──")
            if number > 1:
                self._up(started)
            began = time.monotonic()
            limit = wave_limit(self.topology, wave)
            args = ["converge", "--env", self.result.env, "--limit", limit]
            proc = self._call(args, f"govops converge (wave {number})")
            summaries.append(
                f"wave {number} ({len(wave)} provinces) {time.monotonic() - began:.0f} s: "
                + (_last_line(proc.stdout) or "converged")
            )
        return "; ".join(summaries)

    def _up(self, provinces: Sequence[str]) -> None:
        """`govops lab up` for these provinces (the national hosts always start); running
        hosts are left alone."""
        args = ["lab", "up", "--env", self.result.env]
        if provinces:
            args += ["--provinces", ",".join(provinces)]
        self._call(args, "govops lab up")

    def monitoring(self) -> str:
        expected = len(self.result.provinces) * SYSTEMS
        deadline = time.monotonic() + self.monitoring_timeout
        seen: set[tuple[str, str]] = set()
        while time.monotonic() < deadline:
            seen = {
                (str(r["metric"].get("province")), str(r["metric"].get("system")))
                for r in self._query(UP_QUERY)
            }
            if len(seen) >= expected:
                return f"Prometheus on monitor: {len(seen)}/{expected} systems up"
            time.sleep(5)
        raise StageFailed(
            f"Prometheus on monitor saw {len(seen)}/{expected} systems up after "
            f"{self.monitoring_timeout:.0f} s (query `{UP_QUERY}`)"
        )

    def cutover(self) -> str:
        state = ["--state", str(self.state)]
        run = [
            *["cutover", "run", REHEARSAL, "--env", self.result.env],
            *["--provinces", ",".join(self.result.provinces), *state],
            # The rehearsal's manual gates (certificates, go/no-go), approved up front by the
            # named rehearsal operator; the approvals are in the audit log like any other.
            *["--as", self.approver, "--approve-as", self.approver],
        ]
        code = self._call(run, "govops cutover run", accept=(0, 1)).returncode
        self.result.run_id = self._latest_run()
        html = self.paths.env_dir(self.result.env) / "rehearsal.html"
        report = ["cutover", "report", self.result.run_id, *state]
        self._call([*report, "--format", "html", "-o", str(html)], "govops cutover report")
        self.result.report_html = html
        text = self._call([*report, "--format", "text"], "govops cutover report", show=False)
        sys.stdout.write(text.stdout)
        inherited = self.inheritance()
        title = catalog().checks[INHERIT_CHECK].title
        readiness = [line.strip() for line in text.stdout.splitlines() if title in line]
        # Plain lines (`say` draws a stage's headline rule).
        sys.stdout.write("".join(f"{line}\n" for line in inherited))
        sys.stdout.write("".join(f"readiness: {line}\n" for line in readiness))
        if code != 0:
            raise StageFailed(
                f"run {self.result.run_id} did not complete in every province; "
                f"see `govops cutover status {self.result.run_id} --state {self.state}`"
            )
        return f"run {self.result.run_id} completed in every province" + "".join(
            f"; {line}" for line in inherited
        )

    def inheritance(self) -> list[str]:
        """Per province, the old provinces' records moved / quarantined / verified (`govops
        inherit status`, read from the province's database); one line each."""
        lines = []
        for province in self.result.provinces:
            args = ["inherit", "status", "--env", self.result.env, "--province", province]
            proc = self._call(
                [*args, "--json", "--limit", "0"],
                "govops inherit status",
                accept=(0, 1, 2),
                show=False,
            )
            if proc.returncode != 0:
                lines.append(
                    f"inherited into {province}: status unavailable (exit "
                    f"{proc.returncode}; `govops {' '.join(args)}`)"
                )
                continue
            lines.extend(inheritance_lines(province, json.loads(proc.stdout or "{}")))
        return lines

    def backups(self) -> str:
        """Every province with a backup verified by its restore drill and a streaming standby
        (the drill runs in the cutover, before the network transfer); one line each."""
        deadline = time.monotonic() + self.backups_timeout
        while True:
            seen = {
                name: {str(r["metric"].get("province")): _value(r) for r in self._query(q)}
                for name, q in BACKUP_QUERIES.items()
            }
            lines, missing = backup_lines(self.result.provinces, seen)
            if not missing or time.monotonic() >= deadline:
                break
            time.sleep(10)
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        if missing:
            raise StageFailed(f"without a verified backup and a standby: {', '.join(missing)}")
        n = len(self.result.provinces)
        return f"{n}/{n} provinces with a verified backup and a streaming standby"

    def alerts(self) -> str:
        """alerts firing: N, from the lab's Prometheus, once the rehearsal's own effects have
        cleared (a step's probes recover within a scrape or two); N > 0 fails, naming them."""
        if not self._query("up"):  # _query answers [] when Prometheus does not answer
            raise StageFailed("Prometheus on monitor did not answer: alerts firing unknown")
        deadline = time.monotonic() + self.alerts_timeout
        firing: list[dict[str, dict[str, object]]] = []
        while True:
            firing = self._query(FIRING_QUERY)
            if not firing or time.monotonic() >= deadline:
                break
            time.sleep(10)
        if not firing:
            return "alerts firing: 0"
        names = sorted(
            "{alertname}({province}{system})".format(
                alertname=r["metric"].get("alertname", "?"),
                province=r["metric"].get("province", ""),
                system=("/" + str(r["metric"]["system"])) if r["metric"].get("system") else "",
            )
            for r in firing
        )
        raise StageFailed(f"alerts firing: {len(firing)} after the rehearsal: {', '.join(names)}")

    # -- helpers ----------------------------------------------------------------------------
    def _call(
        self,
        args: list[str],
        what: str,
        accept: Sequence[int] = (0,),
        show: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run a govops command, its output shown as it comes (stderr untouched) and kept."""
        lines: list[str] = []
        with subprocess.Popen(govops(*args), stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if show:
                    sys.stdout.write(line)
                    sys.stdout.flush()
        if proc.returncode not in accept:
            raise StageFailed(f"`{what}` exited {proc.returncode}")
        return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines))

    def _latest_run(self) -> str:
        status = ["cutover", "status", "--json", "--state", str(self.state)]
        proc = self._call(status, "govops cutover status", show=False)
        runs = json.loads(proc.stdout or "[]")
        if not runs:
            raise StageFailed(f"no run recorded in {self.state}")
        return str(max(runs, key=lambda r: str(r["created_at"]))["id"])

    def _query(self, expr: str) -> list[dict[str, dict[str, object]]]:
        """PromQL asked inside `monitor` (a lab-only shortcut: no firewall opening needed)."""
        url = f"http://127.0.0.1:9090/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        podman = Podman(write_containers_conf(self.paths.containers_conf))
        out = podman.run(
            "exec", f"{self.result.env}-monitor", "curl", "-sf", url, check=False, timeout=30
        )
        if out.returncode != 0:
            return []  # Prometheus is still starting: the caller retries until its deadline
        body = json.loads(out.stdout)
        result: list[dict[str, dict[str, object]]] = body.get("data", {}).get("result", [])
        return result


def waves(provinces: Sequence[str], size: int) -> list[list[str]]:
    """The provinces in waves of `size` (one wave, possibly empty, for a small lab)."""
    if size < 1:
        raise ValueError(f"a wave holds at least one province, not {size}")
    chunks = [list(provinces[i : i + size]) for i in range(0, len(provinces), size)]
    return chunks or [[]]


def wave_limit(topology: Topology, wave: Sequence[str]) -> str:
    """The hosts a wave's converge runs on, by name: its provinces' and every host of no
    province (national, monitoring, DNS, backups), as `govops lab up` starts them. (A host
    pattern cannot say it: `province_a:all:!provincial` excludes the provinces' hosts too.)"""
    return ",".join(h.name for h in select_hosts(topology, list(wave)))


class StageFailed(Exception):
    """A stage did not reach its goal; the message says what was seen."""


def inheritance_lines(province: str, status: dict[str, Any]) -> list[str]:
    """`govops inherit status --json` of one province as summary lines, one per old province:
    "inherited into tuyen_quang from ha_giang: 3,450 moved, 2 quarantined, verified ok"."""
    st = status.get(province)
    if not st:
        return [f"inherited into {province}: nothing (no old province merged in)"]
    verdicts: dict[str, list[bool]] = {}
    for v in st.get("verification", []):
        verdicts.setdefault(str(v["source"]), []).append(bool(v["ok"]))
    totals: dict[str, tuple[int, int]] = {}
    for c in st.get("checkpoints", []):
        moved, quarantined = totals.get(str(c["source"]), (0, 0))
        totals[str(c["source"])] = (moved + int(c["moved"]), quarantined + int(c["quarantined"]))
    if not totals:
        return [f"inherited into {province}: nothing moved yet"]
    lines = []
    for source, (moved, quarantined) in sorted(totals.items()):
        oks = verdicts.get(source, [])
        verified = "not verified" if not oks else ("verified ok" if all(oks) else "verify FAILED")
        lines.append(
            f"inherited into {province} from {source}: {moved:,} moved, "
            f"{quarantined:,} quarantined, {verified}"
        )
    return lines


def backup_lines(
    provinces: Sequence[str], seen: dict[str, dict[str, float]]
) -> tuple[list[str], list[str]]:
    """Summary lines ("backup hue: newest 2026-12-03 14:02 UTC, drill ok, standby streaming
    (lag 0 s)") and the provinces missing any of the three."""
    lines, missing = [], []
    for p in provinces:
        stamp, drill = seen["backup"].get(p), seen["drill"].get(p)
        standbys, lag = seen["standbys"].get(p), seen["lag"].get(p)
        newest = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp)) if stamp else "none"
        verdict = {None: "no drill yet", 1.0: "drill ok"}.get(drill, "drill FAILED")
        streaming = (
            f"standby streaming (lag {lag or 0:.0f} s)" if standbys else "no standby streaming"
        )
        lines.append(f"backup {p}: newest {newest}, {verdict}, {streaming}")
        if not stamp or drill != 1.0 or not standbys:
            missing.append(p)
    return lines, missing


def _value(row: dict[str, Any]) -> float:
    return float(row["value"][1])


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
