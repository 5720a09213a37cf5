"""A whole estate of stand-ins in this process, on free loopback ports (tests, benchmarks).

The four national counterparts plus the five systems of each chosen province, configured the
way the lab's roles configure them (communes and agencies from the registry, single sign-on
clients registered on the portal), each stand-in's state in SQLite (default) or in a PostgreSQL
database named by `dsn_for(name)`. `endpoints` is what the prober needs to find them.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govops.lab.standins.app import Running, start
from govops.lab.standins.config import parse_config
from govops.lab.standins.core import Logger
from govops.registry import provinces
from govops.render.common import agencies

SYSTEMS = ("procedures", "documents", "lgsp", "reporting", "meetings")
NATIONAL = ("national-portal", "national-docaxis", "national-ndxp", "national-reporting")
FAULT_TOKEN = "test-fault-token"


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (all held open while picking, so none repeats)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


class _Discard(io.TextIOBase):
    """Stand-ins log every request; tests and benchmarks read their answers instead."""

    def write(self, s: str) -> int:
        return len(s)


def _secret(path: str) -> str:
    return FAULT_TOKEN if path == "fault-token" else f"secret:{path}"


@dataclass
class StandinEstate:
    ports: dict[str, int]
    running: dict[str, Running] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def provinces(self) -> list[str]:
        return sorted({n.split("/")[0] for n in self.ports if "/" in n})

    @property
    def endpoints(self) -> dict[str, Any]:
        """The prober's endpoints override: every system and counterpart on loopback."""
        portal = self.url("national-portal")
        return {
            "systems": {p: {s: self.url(f"{p}/{s}") for s in SYSTEMS} for p in self.provinces},
            "counterparts": {
                "portal": portal,
                "sso": f"{portal}/sso",
                "payment": portal,
                "napd": portal,
                "docaxis": self.url("national-docaxis"),
                "ndxp": self.url("national-ndxp"),
                "reporting": self.url("national-reporting"),
            },
        }

    def stop(self, name: str) -> None:
        """Stop one stand-in (e.g. `hue/procedures`): its port then refuses connections."""
        self.running.pop(name).stop()

    def fault(self, name: str, fault: dict[str, Any] | None) -> None:
        """Inject (or clear, with None) a fault through the stand-in's /_faults endpoint."""
        method = "DELETE" if fault is None else "PUT"
        data = None if fault is None else json.dumps(fault).encode()
        req = urllib.request.Request(
            f"{self.url(name)}/_faults",
            data=data,
            method=method,
            headers={"X-Fault-Token": FAULT_TOKEN, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200

    def close(self) -> None:
        for name in list(self.running):
            with contextlib.suppress(Exception):
                self.running.pop(name).stop()


def start_estate(
    chosen: list[str],
    state_dir: Path,
    *,
    dsn_for: Callable[[str], str] | None = None,
    sync_interval_seconds: float = 0.0,
    publish_agencies: bool = True,
    ports: dict[str, int] | None = None,
    national: bool = True,
) -> StandinEstate:
    """Start the national stand-ins and the five systems of each chosen province.

    To spread an estate over several processes, give every process the same `ports` (for all
    provinces) and start the national stand-ins in one of them only (`national`)."""
    known = provinces()
    everyone = sorted({n.split("/")[0] for n in ports if "/" in n}) if ports else chosen
    names = [*NATIONAL, *(f"{p}/{s}" for p in everyone for s in SYSTEMS)]
    estate = StandinEstate(ports or dict(zip(names, free_ports(len(names)), strict=True)))
    starting = [*(NATIONAL if national else ()), *(f"{p}/{s}" for p in chosen for s in SYSTEMS)]
    quiet = Logger(_Discard())  # type: ignore[arg-type]

    def storage(name: str) -> dict[str, Any]:
        if dsn_for is not None and "/" in name:
            return {"database": {"dsn": dsn_for(name)}}
        return {"state_path": str(state_dir / f"{name.replace('/', '-')}.sqlite")}

    def base(kind: str, name: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "listen": f"127.0.0.1:{estate.ports[name]}",
            "fault_token_file": "fault-token",
            "http_timeout_seconds": 10,
            **storage(name),
        }

    portal = estate.url("national-portal")
    configs: dict[str, dict[str, Any]] = {
        "national-portal": {
            **base("national-portal", "national-portal"),
            "sso_clients": [
                {
                    "client_id": f"procedures-{p}",
                    "client_secret_file": f"sso-{p}",
                    "redirect_uris": [f"{estate.url(f'{p}/procedures')}/sso/callback"],
                }
                for p in everyone
            ],
            "provinces": {p: {"procedures": estate.url(f"{p}/procedures")} for p in everyone},
        },
        "national-docaxis": base("national-docaxis", "national-docaxis"),
        "national-ndxp": base("national-ndxp", "national-ndxp"),
        "national-reporting": base("national-reporting", "national-reporting"),
    }
    for p in chosen:
        province = known[p]
        communes = [{"code": c.code_str, "name": c.name, "type": c.type} for c in province.communes]
        codes = [{"code": a["code"], "name": a["name"]} for a in agencies(province)]
        common = {"province": p, "province_name": province.name}
        configs[f"{p}/procedures"] = {
            **base("procedures", f"{p}/procedures"),
            **common,
            "communes": communes,
            "counterparts": {"portal": portal},
            "sso": {
                "client_id": f"procedures-{p}",
                "client_secret_file": f"sso-{p}",
                "issuer": portal,
            },
            "sync_interval_seconds": sync_interval_seconds,
        }
        configs[f"{p}/documents"] = {
            **base("documents", f"{p}/documents"),
            **common,
            "agencies": codes,
            "counterparts": {"docaxis": estate.url("national-docaxis"), "portal": portal},
        }
        configs[f"{p}/lgsp"] = {
            **base("lgsp", f"{p}/lgsp"),
            **common,
            "counterparts": {
                "ndxp": estate.url("national-ndxp"),
                "portal": portal,
                "docaxis": estate.url("national-docaxis"),
                "reporting": estate.url("national-reporting"),
            },
        }
        configs[f"{p}/reporting"] = {
            **base("reporting", f"{p}/reporting"),
            **common,
            "counterparts": {"reporting": estate.url("national-reporting")},
        }
        configs[f"{p}/meetings"] = {
            **base("meetings", f"{p}/meetings"),
            **common,
            "communes": communes,
        }
    try:
        for name in starting:
            config = parse_config(configs[name], name, read_secret=_secret)
            estate.running[name] = start(config, quiet)
        if publish_agencies:
            for p in chosen:
                req = urllib.request.Request(
                    f"{estate.url(f'{p}/documents')}/api/agencies/publish",
                    data=b"{}",
                    method="POST",
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=30) as resp:
                    assert resp.status == 200, f"{p}: publishing agencies answered {resp.status}"
    except BaseException:
        estate.close()
        raise
    return estate
