"""The lab's hosts: one systemd container per host of the topology, reachable over real SSH.

Everything the lab creates carries the label `govops.lab=<environment>`, so `down` removes
exactly that and nothing else. Podman itself is the record of what exists; running.json and
hosts.limit are snapshots written for the tools that read files (Ansible's --limit).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import paramiko

from govops.errors import GovopsError
from govops.lab.image import HOSTKEY_PATH
from govops.lab.paths import LabPaths, file_lock
from govops.lab.podman import Podman, PodmanError, kernel_limits, write_containers_conf
from govops.lab.sshkeys import (
    HostKeys,
    ensure_keypair,
    known_names,
    parse_public_keys,
    update_known_hosts,
)
from govops.lab.topology import LabHost, Topology

LABEL = "govops.lab"
HOST_LABEL = "govops.host"
BOOT_TIMEOUT = 180.0  # seconds per host, from `podman run` to SSH answering
DEFAULT_JOBS = max(4, 4 * (os.cpu_count() or 1))
HOST_KEY_FILE = f"{HOSTKEY_PATH}.pub"
PROBE_INTERVAL = 0.5  # seconds between boot probes
PODMAN_FAILURE = 125  # `podman exec` exits 125-127 for its own errors, not the command's


class LabError(GovopsError):
    """An operational failure (podman, boot, SSH): exit code 1."""


class UnknownHost(GovopsError):
    """A host name that no container of the environment carries: exit code 2."""

    exit_code = 2


@dataclass(frozen=True)
class Container:
    """A lab container as podman reports it, described by the labels the lab put on it."""

    name: str  # the host name
    container: str
    ip: str
    province: str | None
    system: str | None
    state: str
    image: str

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass
class UpReport:
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    degraded: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    image: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed


def container_name(environment: str, host: str) -> str:
    """Prefixed by environment so a test lab never collides with `make lab`."""
    return f"{environment}-{host}"


def default_podman(paths: LabPaths) -> Podman:
    return Podman(write_containers_conf(paths.containers_conf))


# --- what exists ---------------------------------------------------------------------------


def _label_or_none(labels: dict[str, str], key: str) -> str | None:
    value = labels.get(key, "")
    return value or None


def list_containers(podman: Podman, environment: str) -> list[Container]:
    rows = podman.json("ps", "-a", "--filter", f"label={LABEL}={environment}", "--format", "json")
    containers = []
    for row in rows:
        labels: dict[str, str] = row.get("Labels") or {}
        containers.append(
            Container(
                name=labels.get(HOST_LABEL, row["Names"][0]),
                container=row["Names"][0],
                ip=labels.get("govops.ip", ""),
                province=_label_or_none(labels, "govops.province"),
                system=_label_or_none(labels, "govops.system"),
                state=row.get("State", "unknown"),
                image=row.get("Image", ""),
            )
        )
    return sorted(containers, key=lambda c: c.name)


def running_hosts(environment: str, *, paths: LabPaths | None = None) -> list[str]:
    """Names of the hosts of `environment` whose containers run now (for `govops converge`)."""
    paths = paths or LabPaths.default()
    return [c.name for c in list_containers(default_podman(paths), environment) if c.running]


def write_records(paths: LabPaths, environment: str, containers: Sequence[Container]) -> None:
    """running.json (hosts up) and hosts.limit (for `ansible-playbook --limit @file`)."""
    running = [c for c in containers if c.running]
    env_dir = paths.env_dir(environment)
    env_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "environment": environment,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "hosts": [asdict(c) for c in running],
    }
    paths.running_json(environment).write_text(json.dumps(record, indent=2) + "\n")
    paths.hosts_limit(environment).write_text("".join(f"{c.name}\n" for c in running))


# --- network --------------------------------------------------------------------------------


def ensure_network(podman: Podman, topology: Topology) -> bool:
    """Create the topology's network if missing; refuse one with another subnet. True if created."""
    net = topology.network
    if podman.network_exists(net.name):
        info = podman.json("network", "inspect", net.name)
        subnets = {s["subnet"] for n in info for s in (n.get("subnets") or [])}
        if str(net.subnet) not in subnets:
            raise LabError(
                f"podman network {net.name} exists with subnet(s) {sorted(subnets)}, "
                f"but the topology says {net.subnet}; remove it or change the topology"
            )
        return False
    podman.run(
        "network",
        "create",
        "--subnet",
        str(net.subnet),
        "--gateway",
        str(net.gateway),
        "--label",
        f"{LABEL}={topology.environment}",
        net.name,
    )
    return True


# --- one host -------------------------------------------------------------------------------


def run_args(topology: Topology, host: LabHost, image: str, paths: LabPaths) -> list[str]:
    """`podman run` arguments for one host (pure: unit-tested)."""
    env = topology.environment
    labels = {
        LABEL: env,
        HOST_LABEL: host.name,
        "govops.ip": str(host.ip),
        "govops.province": host.province or "",
        "govops.system": host.system or "",
    }
    args = [
        "run",
        "--detach",
        "--name",
        container_name(env, host.name),
        "--hostname",
        host.name,
        "--network",
        topology.network.name,
        "--ip",
        str(host.ip),
        # Other hosts resolve this one by its host name, as they would in production.
        "--network-alias",
        host.name,
        "--systemd",
        "always",
        # The nftables role manages the host's firewall, inside its own network namespace only.
        "--cap-add",
        "NET_ADMIN",
        # The lab key is mounted read-only rather than baked in or copied after start: the image
        # stays key-free, the key is in place before sshd starts (no race, no extra exec per
        # host), and no play can lock the lab out by rewriting root's authorized_keys.
        "--volume",
        f"{paths.public_key}:/root/.ssh/authorized_keys:ro",
    ]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    return [*args, image, "/sbin/init"]


def boot_probe_script() -> str:
    """One exec answers both questions: podman exec costs ~0.2 s of CPU, 200 hosts share 2 cores.

    The host key is read from inside the container (a trusted channel): no trust on first use.
    """
    return f"systemctl is-system-running --wait; cat {HOST_KEY_FILE}"


def parse_boot_probe(output: str, host: LabHost) -> tuple[str, HostKeys | None]:
    """(systemd state, host keys) from the probe's output; keys are None until sshd's exist."""
    state, _, rest = output.partition("\n")
    keys = parse_public_keys(rest)
    return state.strip(), HostKeys(host.name, str(host.ip), keys) if keys else None


def wait_booted(
    podman: Podman, container: str, host: LabHost, deadline: float
) -> tuple[str, HostKeys]:
    """Wait until systemd in the container has finished booting; return its state and keys."""
    # systemd's bus answers ~0.5 s after `podman run`: earlier probes only burn CPU.
    time.sleep(PROBE_INTERVAL)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LabError(f"{container}: systemd did not finish booting in time")
        try:
            proc = podman.run(
                "exec",
                container,
                "sh",
                "-c",
                boot_probe_script(),
                check=False,
                timeout=remaining,
            )
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{container}: systemd did not finish booting in time") from exc
        if proc.returncode >= PODMAN_FAILURE:
            _fail_if_stopped(podman, container)
        state, keys = parse_boot_probe(proc.stdout, host)
        if state in ("running", "degraded"):
            if keys is None:
                raise LabError(f"{container}: booted ({state}) but has no SSH host key")
            return state, keys
        if state in ("stopping", "maintenance"):
            raise LabError(f"{container}: systemd is {state}")
        # Not up yet: "offline" or an exec error while systemd starts.
        time.sleep(PROBE_INTERVAL)


def _fail_if_stopped(podman: Podman, container: str) -> None:
    """A container whose init died never boots: say so now, with its last words."""
    state = podman.run("inspect", "--format", "{{.State.Status}}", container, check=False)
    if state.stdout.strip() in ("running", "created", "initialized", ""):
        return
    logs = podman.run("logs", "--tail", "15", container, check=False)
    tail = (logs.stdout + logs.stderr).strip()
    raise LabError(f"{container} is {state.stdout.strip()}, not booting; last output:\n{tail}")


def failed_units(podman: Podman, container: str) -> list[str]:
    proc = podman.run(
        "exec", container, "systemctl", "--failed", "--plain", "--no-legend", check=False
    )
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


def wait_ssh(keys: HostKeys, paths: LabPaths, deadline: float) -> None:
    """Log in as root with the lab key, checking the host key strictly; run `true`."""
    last: Exception | None = None
    while time.monotonic() < deadline:
        client = paramiko.SSHClient()
        for key in keys.keys:
            keytype, b64 = key.split()
            client.get_host_keys().add(
                keys.ip, keytype, paramiko.PKey.from_type_string(keytype, base64.b64decode(b64))
            )
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                keys.ip,
                username="root",
                key_filename=str(paths.private_key),
                look_for_keys=False,
                allow_agent=False,
                timeout=5,
                banner_timeout=10,
            )
            _, stdout, _ = client.exec_command("true", timeout=10)
            if stdout.channel.recv_exit_status() == 0:
                return
        except paramiko.BadHostKeyException as exc:
            raise LabError(f"{keys.name}: SSH host key mismatch: {exc}") from exc
        except (OSError, paramiko.SSHException) as exc:
            last = exc
        finally:
            client.close()
        time.sleep(0.3)
    raise LabError(f"{keys.name}: SSH at {keys.ip} did not answer in time ({last})")


@dataclass(frozen=True)
class StartResult:
    keys: HostKeys
    state: str
    failed_units: list[str]


def start_host(
    podman: Podman,
    topology: Topology,
    host: LabHost,
    image: str,
    paths: LabPaths,
    existing: Container | None,
) -> StartResult:
    """Create (or restart) one host and wait until it answers over SSH."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    name = container_name(topology.environment, host.name)
    if existing is None:
        podman.run(*run_args(topology, host, image, paths))
    elif not existing.running:
        podman.run("start", name)
    state, keys = wait_booted(podman, name, host, deadline)
    failed = failed_units(podman, name) if state == "degraded" else []
    wait_ssh(keys, paths, deadline)
    return StartResult(keys, state, failed)


# --- the lab --------------------------------------------------------------------------------

Progress = Callable[[str, bool], None]  # (host name, ok) after each host


def prepare(podman: Podman, paths: LabPaths, topology: Topology, report: UpReport) -> None:
    """Machine-wide and lab-wide prerequisites; each step is a no-op when already done."""
    report.notes += kernel_limits()
    ensure_keypair(paths)
    if ensure_network(podman, topology):
        report.notes.append(f"created network {topology.network.name} ({topology.network.subnet})")


def hosts_to_start(
    selected: Iterable[LabHost], existing: dict[str, Container], known: set[str]
) -> tuple[list[LabHost], list[LabHost]]:
    """Split the selection into (to start, already running and registered).

    A running host whose key is missing from known_hosts goes through the start path again
    (which, for a running container, only re-reads its keys).
    """
    start, running = [], []
    for host in selected:
        current = existing.get(host.name)
        if current is not None and current.running and host.name in known:
            running.append(host)
        else:
            start.append(host)
    return start, running


def up(
    topology: Topology,
    selected: Sequence[LabHost],
    image: str,
    *,
    paths: LabPaths,
    podman: Podman,
    jobs: int = DEFAULT_JOBS,
    on_host: Progress | None = None,
    on_plan: Callable[[int], None] | None = None,
    report: UpReport | None = None,
) -> UpReport:
    """Start the selected hosts concurrently (bounded pool); idempotent."""
    # Two `up`s of one environment at once would race for the same container names.
    with file_lock(paths.env_dir(topology.environment) / ".lock"):
        return _up(topology, selected, image, paths, podman, jobs, on_host, on_plan, report)


def _up(
    topology: Topology,
    selected: Sequence[LabHost],
    image: str,
    paths: LabPaths,
    podman: Podman,
    jobs: int,
    on_host: Progress | None,
    on_plan: Callable[[int], None] | None,
    report: UpReport | None,
) -> UpReport:
    report = report or UpReport()
    report.image = image
    prepare(podman, paths, topology, report)
    existing = {c.name: c for c in list_containers(podman, topology.environment)}
    to_start, running = hosts_to_start(selected, existing, known_names(paths))
    report.already_running = [h.name for h in running]
    stale = [h.name for h in running if existing[h.name].image != image]
    if stale:
        report.notes.append(
            f"{len(stale)} running hosts use an older image than {image}; "
            "`govops lab down` then `up` replaces them"
        )
    if on_plan is not None:
        on_plan(len(to_start))
    collected: list[HostKeys] = []
    if to_start:
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(to_start)))) as pool:
            futures = {
                pool.submit(
                    start_host, podman, topology, host, image, paths, existing.get(host.name)
                ): host
                for host in to_start
            }
            for future in as_completed(futures):
                host = futures[future]
                try:
                    result = future.result()
                except (LabError, PodmanError, OSError, subprocess.SubprocessError) as exc:
                    report.failed[host.name] = str(exc)
                else:
                    collected.append(result.keys)
                    if result.failed_units:
                        report.degraded[host.name] = result.failed_units
                    if existing.get(host.name) is not None and existing[host.name].running:
                        report.already_running.append(host.name)
                    else:
                        report.started.append(host.name)
                if on_host is not None:
                    on_host(host.name, host.name not in report.failed)
    update_known_hosts(paths, collected)
    write_records(paths, topology.environment, list_containers(podman, topology.environment))
    return report


@dataclass
class DownReport:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # network -> why it is still there


def down(environment: str, *, paths: LabPaths, podman: Podman) -> DownReport:
    """Remove the containers and networks labelled for `environment`; the image stays."""
    with file_lock(paths.env_dir(environment) / ".lock"):
        return _down(environment, paths, podman)


def _down(environment: str, paths: LabPaths, podman: Podman) -> DownReport:
    report = DownReport()
    containers = list_containers(podman, environment)
    if containers:
        # -t 0: a lab host has nothing to flush; waiting for 200 clean shutdowns takes minutes.
        podman.run("rm", "--force", "--time", "0", *[c.container for c in containers])
        report.containers = [c.name for c in containers]
    networks = podman.json(
        "network", "ls", "--filter", f"label={LABEL}={environment}", "--format", "json"
    )
    for net in networks:
        # No --force: that would also remove containers the lab did not make.
        proc = podman.run("network", "rm", net["name"], check=False)
        if proc.returncode == 0:
            report.networks.append(net["name"])
        else:
            report.kept[net["name"]] = proc.stderr.strip()
    update_known_hosts(paths, [], remove=[*report.containers, *(c.ip for c in containers)])
    paths.running_json(environment).unlink(missing_ok=True)
    paths.hosts_limit(environment).unlink(missing_ok=True)
    paths.pgpass(environment).unlink(missing_ok=True)
    # A new lab's DNS server starts from the zones; a switch recorded on the old one would make
    # the next rehearsal's DNS steps believe they had already run.
    shutil.rmtree(paths.dns_state_dir(environment), ignore_errors=True)
    return report


def find_running(podman: Podman, environment: str, host: str) -> Container:
    for container in list_containers(podman, environment):
        if container.name == host and container.running:
            return container
    raise UnknownHost(f"no running host {host!r} in the {environment} lab")


def status_rows(containers: Sequence[Container]) -> list[dict[str, Any]]:
    return [asdict(c) for c in containers]
