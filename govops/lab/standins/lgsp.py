"""lgsp: the provincial Local Government Service Platform. A gateway with a fixed route table
(the configured counterparts, never an open proxy) that records every relayed call."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .core import HTTPError, UpstreamUnavailable, now_iso
from .service import Request, Routes, Service

FORWARDED_REQUEST = ("content-type", "accept", "authorization")
FORWARDED_RESPONSE = ("Content-Type", "Location", "WWW-Authenticate", "Cache-Control")


class Lgsp(Service):
    schema = (
        """CREATE TABLE IF NOT EXISTS lgsp_calls (id {serial}, at TEXT NOT NULL,
            route TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER,
            duration_ms DOUBLE PRECISION NOT NULL, error TEXT)""",
    )

    @property
    def table(self) -> dict[str, str]:
        own = self.cfg.province and f"{self.cfg.province}-lgsp"
        return {
            name: url.rstrip("/")
            for name, url in self.cfg.counterparts.items()
            if name not in ("lgsp", own)
        }

    def routes(self, r: Routes) -> None:
        r.add(
            "GET",
            "/api/routes",
            lambda req: (
                200,
                {"routes": [{"name": n, "target": t} for n, t in sorted(self.table.items())]},
            ),
        )
        r.add("GET", "/api/calls", self.calls)
        r.add("GET|POST|PUT", "/gw/{route}/{path:.+}", self.relay)

    def relay(self, req: Request) -> web.Response:
        route, path = req.params["route"], req.params["path"]
        target = self.table.get(route)
        if target is None:
            raise HTTPError(404, "unknown_route", f"no route {route!r}; see GET /api/routes")
        if ".." in path.split("/"):
            raise HTTPError(400, "invalid_path", "'..' is not relayed")
        url = f"{target}/{path}" + (f"?{req.raw_query}" if req.raw_query else "")
        headers = {k: v for k in FORWARDED_REQUEST if (v := req.header(k))}
        started, status, error = time.monotonic(), None, None
        try:
            answer = self.client.call(
                req.method, url, headers=headers, data=req.body if req.method != "GET" else None
            )
            status = answer.status
        except UpstreamUnavailable as exc:
            error = exc.reason
            raise
        finally:
            with self.db.tx() as tx:
                tx.run(
                    "INSERT INTO lgsp_calls (at, route, method, path, status, duration_ms,"
                    " error) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        now_iso(),
                        route,
                        req.method,
                        f"/{path}",
                        status,
                        round((time.monotonic() - started) * 1000, 1),
                        error,
                    ),
                )
        out = {k: v for k in FORWARDED_RESPONSE if (v := answer.headers.get(k))}
        return web.Response(
            status=answer.status, body=answer.body, headers={**out, "X-LGSP-Route": route}
        )

    def calls(self, req: Request) -> tuple[int, Any]:
        with self.db.tx() as tx:
            recent = tx.all("SELECT * FROM lgsp_calls ORDER BY id DESC LIMIT 50")
            totals = tx.all(
                "SELECT route, COUNT(*) AS calls, SUM(CASE WHEN status IS NULL OR"
                " status >= 500 THEN 1 ELSE 0 END) AS failures, MAX(at) AS last_at"
                " FROM lgsp_calls GROUP BY route ORDER BY route"
            )
        return 200, {"routes": totals, "recent": recent}
