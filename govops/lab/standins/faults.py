"""Fault injection for rehearsals: the one active fault, validated, persisted, cached."""

from __future__ import annotations

import threading
import time
from typing import Any

from .core import COMMUNE_CODE, DatabaseUnavailable, HTTPError, now_iso
from .db import Database

FAULT_MODES = ("down", "slow", "error", "refuse_commune")
FAULT_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS standin_faults (
        id INTEGER PRIMARY KEY, mode TEXT NOT NULL, delay_seconds DOUBLE PRECISION,
        commune TEXT, set_at TEXT NOT NULL)""",
)


def parse_fault(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a PUT /_faults body into the stored fault (pure; 400 on nonsense)."""
    mode = body.get("mode")
    if mode not in FAULT_MODES:
        raise HTTPError(400, "invalid_request", f"mode: one of {', '.join(FAULT_MODES)}")
    fault: dict[str, Any] = {"mode": mode, "delay_seconds": None, "commune": None}
    if mode == "slow":
        delay = body.get("delay_seconds")
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 < delay <= 300:
            raise HTTPError(400, "invalid_request", "delay_seconds: a number in (0, 300]")
        fault["delay_seconds"] = float(delay)
    if mode == "refuse_commune":
        commune = body.get("commune")
        if not isinstance(commune, str) or not COMMUNE_CODE.match(commune):
            raise HTTPError(400, "invalid_request", "commune: a five-digit commune code")
        fault["commune"] = commune
    return fault


class Faults:
    """The one active fault, kept in the state store (survives restarts), cached for 1 s."""

    TTL = 1.0

    def __init__(self, db: Database) -> None:
        self.db, self.lock = db, threading.Lock()
        self.cached: dict[str, Any] | None = None
        self.read_at = float("-inf")

    def fresh(self) -> bool:
        """Whether `current()` would answer from the cache (no store query, no blocking)."""
        return time.monotonic() - self.read_at < self.TTL

    def current(self) -> dict[str, Any] | None:
        if self.fresh():
            return self.cached
        try:
            with self.db.tx() as tx:
                row = tx.one(
                    "SELECT mode, delay_seconds, commune, set_at FROM standin_faults WHERE id = 1"
                )
        except DatabaseUnavailable:
            return self.cached  # last known: a database outage must not hide a fault
        with self.lock:
            self.cached, self.read_at = row, time.monotonic()
        return row

    def set(self, fault: dict[str, Any] | None) -> dict[str, Any] | None:
        with self.db.tx() as tx:
            tx.run("DELETE FROM standin_faults WHERE id = 1")
            if fault is not None:
                fault = {**fault, "set_at": now_iso()}
                tx.run(
                    "INSERT INTO standin_faults (id, mode, delay_seconds, commune, set_at)"
                    " VALUES (1, %s, %s, %s, %s)",
                    (fault["mode"], fault["delay_seconds"], fault["commune"], fault["set_at"]),
                )
        with self.lock:
            self.cached, self.read_at = fault, time.monotonic()
        return fault

    def refuses(self, commune_code: str) -> bool:
        fault = self.current()
        return bool(
            fault and fault["mode"] == "refuse_commune" and fault["commune"] == commune_code
        )
