"""Trial or official operation, on every kind (docs/standins-contract.md §4).

A system runs in trial operation until the cutover's go-live sets it official; rollback sets
it back. Kept in the state store (a restart keeps it), shown by the API and as a metric so the
prober and Prometheus see the flip, not the runbook's word for it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .core import HTTPError, now_iso
from .db import Database
from .service import Request

MODES = ("trial", "official")
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS standin_operation_mode (id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL, changed_at TEXT NOT NULL)""",
)


class OperationMode:
    def __init__(self, db: Database, kind: str, province: str | None) -> None:
        self.db, self.kind, self.province = db, kind, province

    def current(self) -> dict[str, Any]:
        with self.db.tx() as tx:
            row = tx.one("SELECT mode, changed_at FROM standin_operation_mode WHERE id = 1")
        return dict(row) if row else {"mode": "trial", "changed_at": None}

    def endpoint(self, req: Request) -> tuple[int, Any]:
        if req.method == "PUT":
            mode = req.json().get("mode")
            if mode not in MODES:
                raise HTTPError(400, "invalid_request", "mode: trial or official")
            with self.db.tx() as tx:
                tx.run(
                    "INSERT INTO standin_operation_mode (id, mode, changed_at)"
                    " VALUES (1, %s, %s) ON CONFLICT (id) DO UPDATE SET mode = excluded.mode,"
                    " changed_at = excluded.changed_at WHERE standin_operation_mode.mode"
                    " <> excluded.mode",
                    (mode, now_iso()),
                )
        now = self.current()
        return 200, {**now, "trial_mode": now["mode"] == "trial", "kind": self.kind}

    def metrics(self, req: Request) -> web.Response:
        labels = f'kind="{self.kind}",province="{self.province or ""}"'
        trial = 1 if self.current()["mode"] == "trial" else 0
        text = (
            "# HELP govops_standin_trial_mode 1 while the system runs in trial operation.\n"
            "# TYPE govops_standin_trial_mode gauge\n"
            f"govops_standin_trial_mode{{{labels}}} {trial}\n"
        )
        return web.Response(text=text, content_type="text/plain", charset="utf-8")
