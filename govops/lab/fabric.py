"""Fabric over the lab: a ThreadingGroup that logs in with the lab key and checks host keys.

Fabric's Connection accepts any host key (AutoAddPolicy) and reads no known_hosts; here every
connection gets the lab's known_hosts and paramiko's RejectPolicy, so a host whose key is not
the one read from inside its container is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import paramiko
from fabric import Config, Connection, ThreadingGroup

from govops.lab.hosts import UnknownHost, default_podman, list_containers
from govops.lab.paths import LabPaths


def _ssh_config(addresses: dict[str, str]) -> paramiko.SSHConfig:
    """Host names map to their lab IPs; an explicit config also keeps ~/.ssh/config out."""
    text = "".join(f"Host {name}\n  HostName {ip}\n" for name, ip in addresses.items())
    return paramiko.SSHConfig.from_text(text)


def strict_connection(host: str, config: Config, paths: LabPaths) -> Connection:
    conn = Connection(
        host,
        user="root",
        config=config,
        connect_kwargs={
            "key_filename": str(paths.private_key),
            "look_for_keys": False,
            "allow_agent": False,
        },
    )
    conn.client.get_host_keys().load(str(paths.known_hosts))
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def lab_group(
    env: str, hosts: Sequence[str] | None = None, *, paths: LabPaths | None = None
) -> ThreadingGroup:
    """Connections to `hosts` (default: every running host) of the `env` lab, by host name."""
    paths = paths or LabPaths.default()
    running = {c.name: c.ip for c in list_containers(default_podman(paths), env) if c.running}
    wanted = list(hosts) if hosts is not None else sorted(running)
    unknown = [h for h in wanted if h not in running]
    if unknown:
        raise UnknownHost(f"not running in the {env} lab: {', '.join(unknown)}")
    config = Config(
        ssh_config=_ssh_config({h: running[h] for h in wanted}),
        # Commands over the lab are unattended; forwarding local stdin to 200 hosts at once
        # would only steal the operator's terminal (and fails under pytest's capture).
        overrides={"run": {"in_stream": False}},
    )
    return ThreadingGroup.from_connections([strict_connection(h, config, paths) for h in wanted])
