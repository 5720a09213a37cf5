"""documents: the provincial document management and executive system; documents travel
between agencies through the National Document Interconnection Axis."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any

from .core import AGENCY_CODE, SYNTHETIC_SUBJECT, HTTPError, need, new_id, now_iso, text
from .service import Request, Routes, Service


class Documents(Service):
    schema = (
        """CREATE TABLE IF NOT EXISTS documents (id TEXT PRIMARY KEY, from_agency TEXT NOT NULL,
            to_agency TEXT NOT NULL, subject TEXT NOT NULL, body_sha256 TEXT NOT NULL,
            axis_message_id BIGINT NOT NULL, sent_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS inbox (axis_message_id BIGINT PRIMARY KEY,
            agency TEXT NOT NULL, from_agency TEXT NOT NULL, subject TEXT NOT NULL,
            body_sha256 TEXT NOT NULL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS inbox_cursor (agency TEXT PRIMARY KEY, since BIGINT NOT NULL)",
    )

    def routes(self, r: Routes) -> None:
        r.add(
            "GET",
            "/api/agencies",
            lambda req: (
                200,
                {
                    "province": self.cfg.province,
                    "count": len(self.cfg.agencies),
                    "agencies": [asdict(a) for a in self.cfg.agencies],
                },
            ),
        )
        r.add("POST", "/api/agencies/publish", self.publish)
        r.add("POST", "/api/documents", self.send)
        r.add("GET", "/api/inbox", self.inbox)
        r.add("DELETE", "/api/documents/{id}", self.withdraw)

    def withdraw(self, req: Request) -> tuple[int, Any]:
        """Withdraw a synthetic document (subject starting SYNTHETIC_SUBJECT): its Axis message
        first, then the copy a local agency received, then the sent record (a failure part-way
        can be retried). A real document is refused."""
        did = req.params["id"]
        with self.db.tx() as tx:
            row = tx.one("SELECT subject, axis_message_id FROM documents WHERE id = %s", (did,))
        if row is None:
            raise HTTPError(404, "not_found", "no such document")
        if not str(row["subject"]).startswith(SYNTHETIC_SUBJECT):
            raise HTTPError(409, "not_synthetic", f"{did} is not a synthetic document")
        message = row["axis_message_id"]
        answer = self.client.call("DELETE", f"{self.counterpart('docaxis')}/api/messages/{message}")
        if answer.status not in (200, 404):
            raise HTTPError(502, "axis_withdraw_failed", f"Axis answered {answer.status}")
        with self.db.tx() as tx:
            tx.run("DELETE FROM inbox WHERE axis_message_id = %s", (message,))
            tx.run("DELETE FROM documents WHERE id = %s", (did,))
        return 200, {"withdrawn": True, "id": did}

    def _own_agency(self, code: str) -> str:
        if code not in self.cfg.agency_codes:
            raise HTTPError(422, "unknown_agency", f"{code} is not an agency of this system")
        return code

    def publish(self, req: Request) -> tuple[int, Any]:
        """Register every configured agency on the Axis and publish the list on the portal."""
        axis = self.counterpart("docaxis")
        for agency in self.cfg.agencies:
            answer = self.client.call(
                "PUT",
                f"{axis}/api/agencies/{agency.code}",
                json_body={"name": agency.name, "province": self.cfg.province},
            )
            if answer.status not in (200, 201):
                raise HTTPError(
                    502,
                    "axis_refused",
                    f"{agency.code}: Axis answered {answer.status}",
                    upstream=answer.json(),
                )
        portal_count = None
        if self.cfg.counterparts.get("portal"):
            url = f"{self.counterpart('portal')}/api/provinces/{self.cfg.province}/agency-codes"
            answer = self.client.call(
                "PUT", url, json_body={"agencies": [asdict(a) for a in self.cfg.agencies]}
            )
            if answer.status != 200:
                raise HTTPError(
                    502,
                    "portal_refused",
                    f"portal answered {answer.status}",
                    upstream=answer.json(),
                )
            portal_count = answer.json().get("count")
        return 200, {"docaxis_registered": len(self.cfg.agencies), "portal_published": portal_count}

    def send(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        sender = self._own_agency(
            text(body, "from_agency", required=False) or self.cfg.agencies[0].code
        )
        recipient = need(body, "to_agency_code", pattern=AGENCY_CODE)
        subject = need(body, "subject", max_len=500)
        content = text(body, "body", required=False, max_len=1_000_000) or ""
        digest = hashlib.sha256(content.encode()).hexdigest()
        answer = self.client.call(
            "POST",
            f"{self.counterpart('docaxis')}/api/messages",
            json_body={
                "from_agency": sender,
                "to_agency": recipient,
                "subject": subject,
                "body_sha256": digest,
            },
        )
        sent = answer.json()
        if answer.status == 422:
            why = sent.get("detail") if isinstance(sent, dict) else None
            raise HTTPError(
                422,
                "axis_refused",
                f"the Axis refused the document: {why or 'no reason given'}",
                upstream=sent,
            )
        if answer.status != 201 or not isinstance(sent, dict):
            raise HTTPError(502, "axis_failed", f"Axis answered {answer.status}", upstream=sent)
        document = {
            "id": new_id("vb"),
            "from_agency": sender,
            "to_agency": recipient,
            "subject": subject,
            "body_sha256": digest,
            "axis_message_id": sent["id"],
            "sent_at": now_iso(),
        }
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO documents (id, from_agency, to_agency, subject, body_sha256,"
                " axis_message_id, sent_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                tuple(document.values()),
            )
        return 201, {**document, "status": "sent"}

    def inbox(self, req: Request) -> tuple[int, Any]:
        """Pull what the Axis holds for the agency, keep it, acknowledge it, list the inbox."""
        agency = self._own_agency(req.query.get("agency", ""))
        axis = self.counterpart("docaxis")
        with self.db.tx() as tx:
            cursor = tx.one("SELECT since FROM inbox_cursor WHERE agency = %s", (agency,))
        since, new = int(cursor["since"]) if cursor else 0, 0
        while True:
            answer = self.client.call("GET", f"{axis}/api/messages?agency={agency}&since={since}")
            page = answer.json()
            if answer.status != 200 or not isinstance(page, dict):
                raise HTTPError(502, "axis_failed", f"Axis answered {answer.status}")
            for m in page["messages"]:
                with self.db.tx() as tx:
                    new += tx.run(
                        "INSERT INTO inbox (axis_message_id, agency, from_agency,"
                        " subject, body_sha256, sent_at, received_at) VALUES"
                        " (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (
                            m["id"],
                            agency,
                            m["from_agency"],
                            m["subject"],
                            m["body_sha256"],
                            m["created_at"],
                            now_iso(),
                        ),
                    )
                self.client.call(
                    "POST", f"{axis}/api/messages/{m['id']}/ack", json_body={"agency": agency}
                )
            with self.db.tx() as tx:
                tx.run(
                    "INSERT INTO inbox_cursor (agency, since) VALUES (%s, %s)"
                    " ON CONFLICT (agency) DO UPDATE SET since = excluded.since",
                    (agency, page["next_since"]),
                )
            if len(page["messages"]) < 100 or page["next_since"] == since:
                break
            since = page["next_since"]
        with self.db.tx() as tx:
            rows = tx.all(
                "SELECT * FROM inbox WHERE agency = %s ORDER BY axis_message_id DESC LIMIT 50",
                (agency,),
            )
        return 200, {"agency": agency, "new": new, "messages": rows}
