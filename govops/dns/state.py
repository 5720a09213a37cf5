"""A province's DNS switch, kept durably: the RRsets before anything changed, and when.

Written (to a temporary file, fsynced, renamed) before each change is sent, so a rollback
after a crash still knows the old records. The old RRsets are recorded once: a re-run of
the lowering or the switch never overwrites them with what the cutover itself wrote.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from govops.dns.records import RRset
from govops.errors import InputError


@dataclass
class SwitchState:
    province: str
    old: dict[str, RRset] = field(default_factory=dict)  # name -> RRset before the cutover
    zones: dict[str, str] = field(default_factory=dict)  # name -> zone
    lowered_at: datetime | None = None
    switched_at: datetime | None = None
    rolled_back_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        def when(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "province": self.province,
            "old": {n: {"ttl": r.ttl, "values": list(r.values)} for n, r in self.old.items()},
            "zones": self.zones,
            "lowered_at": when(self.lowered_at),
            "switched_at": when(self.switched_at),
            "rolled_back_at": when(self.rolled_back_at),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> SwitchState:
        def when(v: str | None) -> datetime | None:
            return datetime.fromisoformat(v) if v else None

        return SwitchState(
            province=data["province"],
            old={n: RRset.of(r["ttl"], r["values"]) for n, r in data["old"].items()},
            zones=dict(data["zones"]),
            lowered_at=when(data.get("lowered_at")),
            switched_at=when(data.get("switched_at")),
            rolled_back_at=when(data.get("rolled_back_at")),
        )


def now() -> datetime:
    return datetime.now(UTC)


def state_path(state_dir: Path, province: str) -> Path:
    return state_dir / f"{province}.json"


def load(state_dir: Path, province: str) -> SwitchState:
    path = state_path(state_dir, province)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return SwitchState(province)
    try:
        return SwitchState.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, "", "a DNS switch state written by govops dns", got=exc) from None


def save(state_dir: Path, state: SwitchState) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state_dir, state.province)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state.to_json(), f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a crash
    finally:
        os.close(fd)
