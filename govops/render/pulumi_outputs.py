"""Pulumi → Ansible: the addresses the cloud gave, into the rendered inventory.

`pulumi stack output --json` of a province stack holds `hosts` ({host name: private IP})
and `vips` ({system: {private, public}}); a file may also map stack names to such objects,
to merge many stacks at once. `load_outputs` validates the file (every mistake names the
file and the key); `apply_outputs` rewrites `ansible_host` in the rendered `hosts.yml`.

The program gives every instance the fixed address the inventory already holds, so on a
healthy estate the merge changes nothing and `govops render --check` stays clean; what it
catches is a cloud that did otherwise, and hosts the inventory does not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from typing import Any

from govops.errors import InputError
from govops.render.common import Files
from govops.yamlio import dump_yaml, parse_yaml

INVENTORY = "hosts.yml"


@dataclass(frozen=True)
class StackOutputs:
    stack: str | None  # None when the file is one stack's outputs
    hosts: dict[str, IPv4Address]
    vips: dict[str, dict[str, IPv4Address]]


@dataclass(frozen=True)
class PulumiOutputs:
    source: Path
    stacks: tuple[StackOutputs, ...]

    def key(self, stack: str | None, *parts: str) -> str:
        return ".".join(p for p in (stack, *parts) if p)


def load_outputs(path: Path) -> PulumiOutputs:
    """Read the JSON of `pulumi stack output --json` (one stack, or stack name → outputs)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "", "an existing file (pulumi stack output --json > FILE)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, "", "valid JSON", got=exc.msg, line=exc.lineno) from None
    return parse_outputs(data, path)


def parse_outputs(data: Any, source: Path) -> PulumiOutputs:
    if not isinstance(data, dict):
        raise InputError(source, "", "a JSON object of stack outputs", got=type(data).__name__)
    if "hosts" in data:
        return PulumiOutputs(source, (_stack(data, None, source),))
    if not data:
        raise InputError(source, "", "the outputs of at least one stack (with `hosts`)")
    stacks = []
    for name, outputs in data.items():
        if not isinstance(outputs, dict):
            raise InputError(
                source, name, "a stack's outputs (an object with `hosts`)", got=outputs
            )
        stacks.append(_stack(outputs, name, source))
    return PulumiOutputs(source, tuple(stacks))


def _stack(data: dict[str, Any], stack: str | None, source: Path) -> StackOutputs:
    prefix = f"{stack}." if stack else ""
    hosts = data.get("hosts")
    if not isinstance(hosts, dict) or not hosts:
        raise InputError(source, f"{prefix}hosts", "an object of host name → private IP", got=hosts)
    vips = data.get("vips", {})
    if not isinstance(vips, dict):
        raise InputError(source, f"{prefix}vips", "an object of system → addresses", got=vips)
    parsed_vips: dict[str, dict[str, IPv4Address]] = {}
    for system, addresses in vips.items():
        if not isinstance(addresses, dict):
            raise InputError(
                source, f"{prefix}vips.{system}", "an object {private, public}", got=addresses
            )
        parsed_vips[system] = {
            kind: _ip(value, f"{prefix}vips.{system}.{kind}", source)
            for kind, value in addresses.items()
        }
    return StackOutputs(
        stack=stack,
        hosts={name: _ip(ip, f"{prefix}hosts.{name}", source) for name, ip in hosts.items()},
        vips=parsed_vips,
    )


def _ip(value: object, key: str, source: Path) -> IPv4Address:
    try:
        address = ip_address(str(value)) if isinstance(value, str) else None
    except ValueError:
        address = None
    if not isinstance(address, IPv4Address):
        raise InputError(source, key, "an IPv4 address", got=value)
    return address


def apply_outputs(files: Files, outputs: PulumiOutputs) -> Files:
    """The rendered files with `ansible_host` of every host in `outputs` set to its address.

    A host the inventory does not hold is an error naming the outputs file and key: the
    stack and the estate disagree, and guessing which is right is not this function's job.
    """
    paths = [p for p in files if p.endswith(f"/{INVENTORY}")]
    if len(paths) != 1:
        raise InputError(outputs.source, "", f"rendered files with one {INVENTORY}", got=paths)
    path = paths[0]
    header, body = _split_header(files[path])
    inventory, _ = parse_yaml(body, path)
    host_vars: dict[str, dict[str, Any]] = inventory["all"]["hosts"]
    # The roles' view of other hosts (render/ansible.py) moves with ansible_host.
    index: dict[str, dict[str, Any]] = inventory["all"].get("vars", {}).get("govops_hosts", {})
    for stack in outputs.stacks:
        for name, ip in stack.hosts.items():
            if name not in host_vars:
                raise InputError(
                    outputs.source,
                    outputs.key(stack.stack, "hosts", name),
                    f"a host of the inventory {path}",
                    got=name,
                )
            host_vars[name] = {**(host_vars[name] or {}), "ansible_host": str(ip)}
            if name in index:
                index[name]["ansible_host"] = str(ip)
    return {**files, path: header + dump_yaml(inventory)}


def _split_header(text: str) -> tuple[str, str]:
    """The render header (leading comment lines) and the YAML after it."""
    lines = text.splitlines(keepends=True)
    n = 0
    while n < len(lines) and lines[n].startswith("#"):
        n += 1
    return "".join(lines[:n]), "".join(lines[n:])
