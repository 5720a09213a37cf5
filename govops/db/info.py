"""`pgbackrest --stanza=P info --output=json` read into typed backups (pgBackRest 2.45's format).

Only what the commands use is kept: each backup's label, type, start/stop time, LSN and WAL
range, sizes, and the stanza's status. A field missing or of the wrong type is an error naming
the key, never a KeyError: the JSON comes from another host and another program's version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from govops.errors import GovopsError

BACKUP_TYPES = ("full", "diff", "incr")


class InfoError(GovopsError):
    """pgBackRest's info could not be read (not JSON, an unknown shape, no such stanza)."""


@dataclass(frozen=True)
class Backup:
    label: str  # 20250627-010002F, 20250627-010002F_20250628-013002I
    type: str  # full, diff, incr
    start: datetime  # UTC
    stop: datetime
    lsn_start: str  # 0/2000028
    lsn_stop: str
    wal_start: str  # the first WAL segment the backup needs (archive start)
    wal_stop: str
    size: int  # the database's size (bytes)
    delta: int  # what this backup copied
    repo_size: int  # its size in the repository (compressed, encrypted)
    repo_delta: int
    prior: str | None  # the backup it builds on (diff, incr)
    error: bool  # pgBackRest found page checksum errors while copying

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "type": self.type,
            "start": self.start.isoformat(),
            "stop": self.stop.isoformat(),
            "lsn": {"start": self.lsn_start, "stop": self.lsn_stop},
            "wal": {"start": self.wal_start, "stop": self.wal_stop},
            "size": self.size,
            "delta": self.delta,
            "repository": {"size": self.repo_size, "delta": self.repo_delta},
            "prior": self.prior,
            "error": self.error,
        }


@dataclass(frozen=True)
class Stanza:
    name: str
    status_code: int  # 0 ok; 1 missing stanza path; 2 no valid backups; …
    status_message: str
    backups: tuple[Backup, ...]  # oldest first
    wal_min: str | None  # the oldest and newest WAL segment archived (current database)
    wal_max: str | None
    cipher: str

    @property
    def ok(self) -> bool:
        return self.status_code == 0

    @property
    def newest(self) -> Backup | None:
        return self.backups[-1] if self.backups else None

    def newest_of(self, kind: str) -> Backup | None:
        found = [b for b in self.backups if b.type == kind]
        return found[-1] if found else None


def parse_info(text: str, stanza: str, source: str = "pgbackrest info") -> Stanza:
    """The stanza `stanza` from `info --output=json` (a list of stanzas); `source` names where
    the text came from in errors (host and command)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InfoError(f"{source}: not JSON ({exc}): {text[:200]!r}") from None
    if not isinstance(data, list):
        raise InfoError(f"{source}: expected a JSON list of stanzas, got {type(data).__name__}")
    names = [s.get("name") for s in data if isinstance(s, dict)]
    for item in data:
        if isinstance(item, dict) and item.get("name") == stanza:
            return _stanza(item, f"{source}: stanza {stanza}")
    known = ", ".join(map(str, names)) or "none"
    raise InfoError(f"{source}: no stanza {stanza!r} in the repository (stanzas: {known})")


def _stanza(item: dict[str, Any], where: str) -> Stanza:
    status = _get(item, "status", dict, where)
    backups = [_backup(b, f"{where}: backup[{i}]") for i, b in enumerate(item.get("backup") or [])]
    backups.sort(key=lambda b: (b.stop, b.label))
    # The archive range of the current database (the last entry of `db`): after an upgrade
    # the older database's WAL is no use to its backups' successors.
    archives = [a for a in item.get("archive") or [] if isinstance(a, dict)]
    current = archives[-1] if archives else {}
    return Stanza(
        name=str(item.get("name")),
        status_code=_get(status, "code", int, where + ": status"),
        status_message=str(status.get("message", "")),
        backups=tuple(backups),
        wal_min=current.get("min"),
        wal_max=current.get("max"),
        cipher=str(item.get("cipher", "")),
    )


def _backup(b: Any, where: str) -> Backup:
    if not isinstance(b, dict):
        raise InfoError(f"{where}: expected an object, got {type(b).__name__}")
    kind = _get(b, "type", str, where)
    if kind not in BACKUP_TYPES:
        raise InfoError(f"{where}: type: expected one of {', '.join(BACKUP_TYPES)}, got {kind!r}")
    ts = _get(b, "timestamp", dict, where)
    lsn = b.get("lsn") or {}
    archive = _get(b, "archive", dict, where)
    info = _get(b, "info", dict, where)
    repo = _get(info, "repository", dict, where + ": info")
    return Backup(
        label=_get(b, "label", str, where),
        type=kind,
        start=_epoch(_get(ts, "start", int, where + ": timestamp")),
        stop=_epoch(_get(ts, "stop", int, where + ": timestamp")),
        lsn_start=str(lsn.get("start", "")),
        lsn_stop=str(lsn.get("stop", "")),
        wal_start=_get(archive, "start", str, where + ": archive"),
        wal_stop=_get(archive, "stop", str, where + ": archive"),
        size=_get(info, "size", int, where + ": info"),
        delta=_get(info, "delta", int, where + ": info"),
        repo_size=_get(repo, "size", int, where + ": info.repository"),
        repo_delta=_get(repo, "delta", int, where + ": info.repository"),
        prior=b.get("prior") if isinstance(b.get("prior"), str) else None,
        error=bool(b.get("error", False)),
    )


def _get(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InfoError(f"{where}: {key}: expected {kind.__name__}, got {value!r}")
    return value


def _epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
