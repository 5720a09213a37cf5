"""National counterparts other than the portal: the Document Interconnection Axis, the data
exchange platform (NDXP) and the national reporting system."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .core import (
    AGENCY_CODE,
    SYNTHETIC_INDICATOR,
    SYNTHETIC_SUBJECT,
    HTTPError,
    need,
    new_id,
    now_iso,
    text,
)
from .service import Request, Routes, Service

SHA256 = re.compile(r"^[0-9a-f]{64}$")
MESSAGE_COLUMNS = "id, from_agency, to_agency, subject, body_sha256, created_at, acked_at"


def agency_param(code: str) -> str:
    if not AGENCY_CODE.match(code):
        raise HTTPError(400, "invalid_request", f"agency code must match {AGENCY_CODE.pattern}")
    return code


class DocAxis(Service):
    """national-docaxis: agencies register their electronic identification code; messages
    between registered agencies are queued until the recipient acknowledges them."""

    schema = (
        """CREATE TABLE IF NOT EXISTS axis_agencies (code TEXT PRIMARY KEY, name TEXT,
            province TEXT, registered_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS axis_messages (id {serial}, from_agency TEXT NOT NULL,
            to_agency TEXT NOT NULL, subject TEXT NOT NULL, body_sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL, acked_at TEXT)""",
        "CREATE INDEX IF NOT EXISTS axis_messages_to ON axis_messages (to_agency, id)",
    )

    def routes(self, r: Routes) -> None:
        r.add("PUT", "/api/agencies/{code}", self.register)
        r.add("GET", "/api/agencies/{code}", self.agency)
        r.add("GET", "/api/agencies", self.agencies)
        r.add("POST", "/api/messages", self.send)
        r.add("GET", "/api/messages", self.messages)
        r.add("POST", "/api/messages/{id}/ack", self.ack)
        r.add("DELETE", "/api/messages/{id}", self.withdraw)

    def withdraw(self, req: Request) -> tuple[int, Any]:
        """Withdraw a synthetic message (its subject starts SYNTHETIC_SUBJECT); refuse others."""
        mid = req.params["id"]
        with self.db.tx() as tx:
            row = tx.one("SELECT subject FROM axis_messages WHERE CAST(id AS TEXT) = %s", (mid,))
            if row is None:
                raise HTTPError(404, "not_found", "no such message")
            if not str(row["subject"]).startswith(SYNTHETIC_SUBJECT):
                raise HTTPError(409, "not_synthetic", f"message {mid} is not synthetic")
            tx.run("DELETE FROM axis_messages WHERE CAST(id AS TEXT) = %s", (mid,))
        return 200, {"withdrawn": True, "id": mid}

    def register(self, req: Request) -> tuple[int, Any]:
        code = agency_param(req.params["code"])
        body = req.json()
        row = (
            code,
            text(body, "name", required=False, max_len=500),
            text(body, "province", required=False),
            now_iso(),
        )
        with self.db.tx() as tx:
            existed = tx.one("SELECT code FROM axis_agencies WHERE code = %s", (code,))
            tx.run(
                "INSERT INTO axis_agencies (code, name, province, registered_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (code) DO UPDATE SET"
                " name = excluded.name, province = excluded.province",
                row,
            )
        return (200 if existed else 201), {
            "code": code,
            "name": row[1],
            "province": row[2],
            "registered": True,
        }

    def agency(self, req: Request) -> tuple[int, Any]:
        with self.db.tx() as tx:
            row = tx.one("SELECT * FROM axis_agencies WHERE code = %s", (req.params["code"],))
        if row is None:
            raise HTTPError(404, "unknown_agency", req.params["code"])
        return 200, row

    def agencies(self, req: Request) -> tuple[int, Any]:
        province = req.query.get("province")
        with self.db.tx() as tx:
            rows = tx.all(
                "SELECT * FROM axis_agencies WHERE CAST(%s AS TEXT) IS NULL"
                " OR province = %s ORDER BY code",
                (province, province),
            )
        return 200, {"count": len(rows), "agencies": rows}

    def send(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        sender, recipient = need(body, "from_agency"), need(body, "to_agency")
        row = (
            sender,
            recipient,
            need(body, "subject", max_len=500),
            need(body, "body_sha256", pattern=SHA256),
            now_iso(),
        )
        with self.db.tx() as tx:
            known = {
                r["code"]
                for r in tx.all(
                    "SELECT code FROM axis_agencies WHERE code IN (%s, %s)", (sender, recipient)
                )
            }
            unknown = [c for c in (sender, recipient) if c not in known]
            if unknown:
                raise HTTPError(
                    422, "unknown_agency", "not registered on the Axis", agencies=unknown
                )
            created = tx.one(
                "INSERT INTO axis_messages (from_agency, to_agency, subject,"
                " body_sha256, created_at) VALUES (%s, %s, %s, %s, %s)"
                " RETURNING id, created_at",
                row,
            )
        assert created is not None
        return 201, {**created, "status": "queued"}

    def messages(self, req: Request) -> tuple[int, Any]:
        agency = agency_param(req.query.get("agency", ""))
        since = req.query.get("since", "0")
        if not since.isdigit():
            raise HTTPError(400, "invalid_request", "since: a message id (integer)")
        with self.db.tx() as tx:
            rows = tx.all(
                f"SELECT {MESSAGE_COLUMNS} FROM axis_messages WHERE to_agency = %s"
                " AND id > %s ORDER BY id LIMIT 100",
                (agency, int(since)),
            )
        next_since = rows[-1]["id"] if rows else int(since)
        return 200, {"agency": agency, "messages": rows, "next_since": next_since}

    def ack(self, req: Request) -> tuple[int, Any]:
        if not req.params["id"].isdigit():
            raise HTTPError(404, "not_found", "no such message")
        agency = need(req.json(), "agency")
        with self.db.tx() as tx:
            row = tx.one(
                f"SELECT {MESSAGE_COLUMNS} FROM axis_messages WHERE id = %s",
                (int(req.params["id"]),),
            )
            if row is None:
                raise HTTPError(404, "not_found", "no such message")
            if row["to_agency"] != agency:
                raise HTTPError(403, "not_recipient", "only the recipient acknowledges")
            if row["acked_at"] is None:
                row["acked_at"] = now_iso()
                tx.run(
                    "UPDATE axis_messages SET acked_at = %s WHERE id = %s",
                    (row["acked_at"], row["id"]),
                )
        return 200, row


ENDPOINT = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")


class Ndxp(Service):
    """national-ndxp: reachability, an echo with a stored receipt, and the registration of
    which provincial endpoint serves a province (the network transfer switches it from the
    old provinces' endpoints to the merged province's system); dossiers sent through the
    platform go to the registered endpoint."""

    schema = (
        """CREATE TABLE IF NOT EXISTS ndxp_receipts (id TEXT PRIMARY KEY, dataset TEXT NOT NULL,
            sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, received_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS ndxp_providers (province TEXT PRIMARY KEY,
            endpoint TEXT NOT NULL, previous TEXT, registered_at TEXT NOT NULL)""",
    )

    def routes(self, r: Routes) -> None:
        r.add("GET", "/api/ping", lambda req: (200, {"pong": True, "at": now_iso()}))
        r.add("POST", "/api/exchange/{dataset}", self.exchange)
        r.add("PUT", "/api/providers/{province}", self.register_provider)
        r.add("GET", "/api/providers/{province}", self.provider)
        r.add("DELETE", "/api/providers/{province}", self.unregister_provider)
        r.add("POST", "/api/providers/{province}/dossiers", self.deliver_dossier)

    def register_provider(self, req: Request) -> tuple[int, Any]:
        province = req.params["province"]
        endpoint = need(req.json(), "endpoint", pattern=ENDPOINT).rstrip("/")
        with self.db.tx() as tx:
            row = tx.one("SELECT endpoint FROM ndxp_providers WHERE province = %s", (province,))
            previous = row["endpoint"] if row else None
            if previous == endpoint:  # a repeat changes nothing (idempotent)
                return 200, {"province": province, "endpoint": endpoint, "changed": False}
            tx.run("DELETE FROM ndxp_providers WHERE province = %s", (province,))
            tx.run(
                "INSERT INTO ndxp_providers (province, endpoint, previous, registered_at)"
                " VALUES (%s, %s, %s, %s)",
                (province, endpoint, previous, now_iso()),
            )
        return 200, {"province": province, "endpoint": endpoint, "previous": previous,
                     "changed": True}  # fmt: skip

    def unregister_provider(self, req: Request) -> tuple[int, Any]:
        """A rollback to "no endpoint of the new province registered" (idempotent)."""
        province = req.params["province"]
        with self.db.tx() as tx:
            gone = tx.run("DELETE FROM ndxp_providers WHERE province = %s", (province,))
        return 200, {"province": province, "unregistered": bool(gone)}

    def provider(self, req: Request) -> tuple[int, Any]:
        province = req.params["province"]
        with self.db.tx() as tx:
            row = tx.one("SELECT * FROM ndxp_providers WHERE province = %s", (province,))
        if row is None:
            raise HTTPError(404, "not_registered", f"no endpoint registered for {province}")
        return 200, dict(row)

    def deliver_dossier(self, req: Request) -> tuple[int, Any]:
        """Forward a dossier to the endpoint registered for the province: where it lands is
        where the platform's traffic goes."""
        _, registered = self.provider(req)
        endpoint = registered["endpoint"]
        answer = self.client.call("POST", f"{endpoint}/api/dossiers", json_body=req.json())
        body = answer.json()
        if answer.status >= 300 or not isinstance(body, dict):
            reason = body.get("message", "") if isinstance(body, dict) else ""
            raise HTTPError(
                502, "delivery_failed", f"{endpoint} answered {answer.status} {reason}".strip()
            )
        return 201, {"delivered_to": endpoint, "id": body.get("id"), "dossier": body}

    def exchange(self, req: Request) -> tuple[int, Any]:
        dataset = req.params["dataset"]
        payload = req.json()
        receipt = {
            "id": new_id("rc"),
            "dataset": dataset,
            "sha256": hashlib.sha256(req.body).hexdigest(),
            "bytes": len(req.body),
            "received_at": now_iso(),
        }
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO ndxp_receipts (id, dataset, sha256, bytes, received_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                tuple(receipt.values()),
            )
        return 200, {"receipt": receipt, "echo": payload}


class NationalReporting(Service):
    """national-reporting: every submission is kept; readers see the newest first."""

    schema = (
        """CREATE TABLE IF NOT EXISTS national_reports (id TEXT PRIMARY KEY,
            province TEXT NOT NULL, period TEXT NOT NULL, indicators TEXT NOT NULL,
            source_id TEXT, received_at TEXT NOT NULL)""",
    )

    def routes(self, r: Routes) -> None:
        r.add("POST", "/api/reports", self.receive)
        r.add("GET", "/api/reports", self.reports)
        r.add("DELETE", "/api/reports/{id}", self.withdraw)

    def withdraw(self, req: Request) -> tuple[int, Any]:
        """Withdraw a synthetic report (indicators hold SYNTHETIC_INDICATOR); refuse others."""
        rid = req.params["id"]
        with self.db.tx() as tx:
            row = tx.one("SELECT indicators FROM national_reports WHERE id = %s", (rid,))
            if row is None:
                raise HTTPError(404, "not_found", "no such report")
            if SYNTHETIC_INDICATOR not in json.loads(row["indicators"]):
                raise HTTPError(409, "not_synthetic", f"{rid} is not a synthetic report")
            tx.run("DELETE FROM national_reports WHERE id = %s", (rid,))
        return 200, {"withdrawn": True, "id": rid}

    def receive(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        indicators = body.get("indicators")
        if not isinstance(indicators, dict):
            raise HTTPError(400, "invalid_request", "indicators: an object")
        row = (
            new_id("nr"),
            need(body, "province"),
            need(body, "period", max_len=32),
            json.dumps(indicators, ensure_ascii=False),
            text(body, "source_id", required=False, max_len=64),
            now_iso(),
        )
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO national_reports (id, province, period, indicators, source_id,"
                " received_at) VALUES (%s, %s, %s, %s, %s, %s)",
                row,
            )
        return 201, {"id": row[0], "received_at": row[5]}

    def reports(self, req: Request) -> tuple[int, Any]:
        province, period = req.query.get("province"), req.query.get("period")
        with self.db.tx() as tx:
            rows = tx.all(
                "SELECT * FROM national_reports"
                " WHERE (CAST(%s AS TEXT) IS NULL OR province = %s)"
                " AND (CAST(%s AS TEXT) IS NULL OR period = %s)"
                " ORDER BY received_at DESC LIMIT 100",
                (province, province, period, period),
            )
        for row in rows:
            row["indicators"] = json.loads(row["indicators"])
        return 200, {"count": len(rows), "reports": rows}
