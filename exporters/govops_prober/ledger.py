"""Which communes get a test dossier at each scrape, and when each one last succeeded.

The dispatch asks that dossier submission be tested in *every* commune. One scrape cannot
submit in all 3,321 without loading the systems it watches, so each scrape takes a batch, sized
so that the whole province is covered once per `commune_period_seconds`, in round-robin order
of last attempt: a commune that keeps failing does not starve the others of their turn, and
every commune is attempted at least once per period whatever the others do.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

NEVER = 0.0


@dataclass
class Ledger:
    """One province's communes: last attempt and last success, as Unix times (0 = never)."""

    communes: tuple[str, ...]
    path: Path | None = None
    attempted: dict[str, float] = field(default_factory=dict)
    succeeded: dict[str, float] = field(default_factory=dict)
    last_batch_at: float | None = None

    @classmethod
    def open(cls, communes: tuple[str, ...], path: Path | None) -> Ledger:
        ledger = cls(communes, path)
        if path is not None and path.exists():
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                data = json.loads(path.read_text(encoding="utf-8"))
                known = set(communes)
                # A commune removed from the registry is forgotten; a new one starts at never.
                ledger.attempted = {c: float(t) for c, t in data["attempted"].items() if c in known}
                ledger.succeeded = {c: float(t) for c, t in data["succeeded"].items() if c in known}
                ledger.last_batch_at = data.get("last_batch_at")
        return ledger

    def batch_size(self, now: float, period: float, interval_hint: float, cap: int) -> int:
        """Enough communes that the province is covered once per period at this scrape rate."""
        elapsed = interval_hint if self.last_batch_at is None else now - self.last_batch_at
        elapsed = max(elapsed, 0.0)
        wanted = math.ceil(len(self.communes) * min(elapsed, period) / period)
        return max(1, min(wanted, cap, len(self.communes)))

    def next_batch(self, now: float, size: int) -> list[str]:
        self.last_batch_at = now
        order = sorted(self.communes, key=lambda c: (self.attempted.get(c, NEVER), c))
        return order[:size]

    def record(self, commune: str, ok: bool, at: float) -> None:
        self.attempted[commune] = at
        if ok:
            self.succeeded[commune] = at

    def last_success(self, commune: str) -> float:
        return self.succeeded.get(commune, NEVER)

    def save(self) -> None:
        """Atomically replace the state file (a crash mid-write leaves the old one)."""
        if self.path is None:
            return
        data = {
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "last_batch_at": self.last_batch_at,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
