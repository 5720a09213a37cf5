"""reporting: the provincial reporting system; every report is forwarded to national-reporting."""

from __future__ import annotations

import json
import re
from typing import Any

from .core import SYNTHETIC_INDICATOR, HTTPError, need, new_id, now_iso
from .service import Request, Routes, Service

PERIOD = re.compile(r"^[0-9]{4}(-(0[1-9]|1[0-2])(-[0-3][0-9])?|-Q[1-4])?$")


def check_indicators(value: Any) -> dict[str, float | int]:
    """Indicators are named numbers: {"dossiers_received": 120, "on_time_ratio": 0.97}."""
    if (
        not isinstance(value, dict)
        or not value
        or not all(isinstance(k, str) and 0 < len(k) <= 100 for k in value)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
    ):
        raise HTTPError(400, "invalid_request", "indicators: a non-empty object of numbers")
    return value


class Reporting(Service):
    schema = (
        """CREATE TABLE IF NOT EXISTS reports (id TEXT PRIMARY KEY, period TEXT NOT NULL,
            indicators TEXT NOT NULL, status TEXT NOT NULL, national_id TEXT,
            created_at TEXT NOT NULL, forwarded_at TEXT)""",
    )

    def routes(self, r: Routes) -> None:
        r.add("POST", "/api/reports", self.submit)
        r.add("GET", "/api/reports", self.reports)
        r.add("DELETE", "/api/reports/{id}", self.withdraw)

    def withdraw(self, req: Request) -> tuple[int, Any]:
        """Withdraw a synthetic report (indicators hold SYNTHETIC_INDICATOR) here and at the
        national reporting system it was forwarded to; a real report is refused. The local
        copy goes last, so a failed national withdrawal can be retried."""
        rid = req.params["id"]
        with self.db.tx() as tx:
            row = tx.one("SELECT indicators, national_id FROM reports WHERE id = %s", (rid,))
        if row is None:
            raise HTTPError(404, "not_found", "no such report")
        if SYNTHETIC_INDICATOR not in json.loads(row["indicators"]):
            raise HTTPError(409, "not_synthetic", f"{rid} is not a synthetic report")
        if row["national_id"]:
            answer = self.client.call(
                "DELETE", f"{self.counterpart('reporting')}/api/reports/{row['national_id']}"
            )
            if answer.status not in (200, 404):
                raise HTTPError(
                    502, "national_withdraw_failed", f"national reporting answered {answer.status}"
                )
        with self.db.tx() as tx:
            tx.run("DELETE FROM reports WHERE id = %s", (rid,))
        return 200, {"withdrawn": True, "id": rid}

    def submit(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        period = need(body, "period", max_len=16, pattern=PERIOD)
        indicators = check_indicators(body.get("indicators"))
        rid = new_id("bc")
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO reports (id, period, indicators, status, created_at)"
                " VALUES (%s, %s, %s, 'pending', %s)",
                (rid, period, json.dumps(indicators), now_iso()),
            )
        answer = self.client.call(
            "POST",
            f"{self.counterpart('reporting')}/api/reports",
            json_body={
                "province": self.cfg.province,
                "period": period,
                "indicators": indicators,
                "source_id": rid,
            },
        )
        received = answer.json()
        if answer.status != 201 or not isinstance(received, dict):
            raise HTTPError(
                502,
                "national_reporting_failed",
                f"national reporting answered {answer.status}",
                id=rid,
                upstream=received,
            )
        with self.db.tx() as tx:
            tx.run(
                "UPDATE reports SET status = 'forwarded', national_id = %s,"
                " forwarded_at = %s WHERE id = %s",
                (received["id"], now_iso(), rid),
            )
        return 201, {
            "id": rid,
            "period": period,
            "status": "forwarded",
            "national_id": received["id"],
        }

    def reports(self, req: Request) -> tuple[int, Any]:
        with self.db.tx() as tx:
            rows = tx.all("SELECT * FROM reports ORDER BY created_at DESC LIMIT 100")
        for row in rows:
            row["indicators"] = json.loads(row["indicators"])
        return 200, {"count": len(rows), "reports": rows}
