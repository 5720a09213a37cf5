"""meetings: the provincial online meeting system; communes join meetings as bridges."""

from __future__ import annotations

from typing import Any

from .core import HTTPError, need, new_id, now_iso, text
from .service import Request, Routes, Service

SCOPES = ("province", "national")


class Meetings(Service):
    schema = (
        """CREATE TABLE IF NOT EXISTS meetings (id TEXT PRIMARY KEY, title TEXT NOT NULL,
            scope TEXT NOT NULL, scheduled_at TEXT, created_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS participants (id TEXT PRIMARY KEY,
            meeting_id TEXT NOT NULL, commune_code TEXT NOT NULL, bridge TEXT NOT NULL,
            joined_at TEXT NOT NULL, UNIQUE (meeting_id, commune_code))""",
    )

    def routes(self, r: Routes) -> None:
        r.add("POST", "/api/meetings", self.create)
        r.add("GET", "/api/meetings/{id}", self.meeting)
        r.add("POST", "/api/meetings/{id}/join", self.join)

    def create(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        scope = body.get("scope", "province")
        if scope not in SCOPES:
            raise HTTPError(400, "invalid_request", f"scope: one of {', '.join(SCOPES)}")
        meeting = {
            "id": new_id("mt"),
            "title": need(body, "title", max_len=500),
            "scope": scope,
            "scheduled_at": text(body, "scheduled_at", required=False),
            "created_at": now_iso(),
        }
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO meetings (id, title, scope, scheduled_at, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                tuple(meeting.values()),
            )
        return 201, meeting

    def _meeting(self, mid: str) -> dict[str, Any]:
        with self.db.tx() as tx:
            row = tx.one("SELECT * FROM meetings WHERE id = %s", (mid,))
        if row is None:
            raise HTTPError(404, "not_found", "no such meeting")
        return row

    def meeting(self, req: Request) -> tuple[int, Any]:
        meeting = self._meeting(req.params["id"])
        with self.db.tx() as tx:
            people = tx.all(
                "SELECT id AS participant_id, commune_code, bridge, joined_at"
                " FROM participants WHERE meeting_id = %s ORDER BY joined_at",
                (meeting["id"],),
            )
        return 200, {
            **meeting,
            "participants": people,
            "communes_joined": len(people),
            "communes_total": len(self.cfg.communes),
        }

    def join(self, req: Request) -> tuple[int, Any]:
        meeting = self._meeting(req.params["id"])
        commune = need(req.json(), "commune_code")
        if commune not in self.cfg.commune_codes:
            raise HTTPError(
                422, "unknown_commune", f"{commune} is not a commune of {self.cfg.province}"
            )
        if self.faults.refuses(commune):
            raise HTTPError(422, "commune_refused", f"fault injected: {commune} refused")
        bridge = f"{self.cfg.province}-meetings/{meeting['id']}/{commune}"
        with self.db.tx() as tx:
            added = tx.run(
                "INSERT INTO participants (id, meeting_id, commune_code, bridge,"
                " joined_at) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (meeting_id, commune_code) DO NOTHING",
                (new_id("pt"), meeting["id"], commune, bridge, now_iso()),
            )
            row = tx.one(
                "SELECT id AS participant_id, commune_code, bridge, joined_at"
                " FROM participants WHERE meeting_id = %s AND commune_code = %s",
                (meeting["id"], commune),
            )
        return (201 if added else 200), {**(row or {}), "meeting_id": meeting["id"]}
