"""national-portal: single sign-on, dossier records, payment, notification files, the National
Administrative Procedures Database (administrative units), portal interfaces, agency codes.

Why over 500 lines: kept in one module on purpose: it is one counterpart (one store, one
signing key, one route table) and each of its sections reads alone, in the contract's order
(docs/standins-contract.md §5)."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
import urllib.parse
from typing import Any

from aiohttp import web

from .core import (
    AGENCY_CODE,
    COMMUNE_CODE,
    HTTPError,
    UpstreamUnavailable,
    need,
    new_id,
    now_iso,
    province_param,
    text,
)
from .register import SCHEMA as REGISTER_SCHEMA
from .register import CommuneRegister
from .service import Request, Routes, Service, json_response, redirect
from .tokens import TokenError, sign, verify

CODE_TTL = 120
TOKEN_TTL = 300
MAX_RECORDS = 1000
NOTIFICATION_COLUMNS = (
    "id, province, dossier_id, commune_code, subject, content, created_at,"
    " status, attempts, acknowledged_at, last_error"
)


class Portal(CommuneRegister, Service):
    schema = (
        "CREATE TABLE IF NOT EXISTS portal_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS sso_codes (code TEXT PRIMARY KEY, client_id TEXT NOT NULL,
            redirect_uri TEXT NOT NULL, subject TEXT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL, used INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE IF NOT EXISTS dossier_records (province TEXT NOT NULL, id TEXT NOT NULL,
            commune_code TEXT NOT NULL, procedure_code TEXT NOT NULL, status TEXT NOT NULL,
            received_at TEXT, updated_at TEXT NOT NULL, synced_at TEXT NOT NULL,
            PRIMARY KEY (province, id))""",
        """CREATE TABLE IF NOT EXISTS payments (id TEXT PRIMARY KEY, province TEXT,
            dossier_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
            paid_at TEXT NOT NULL)""",
        # Test-mode payments and zero-value authorisations (synthetic checks): their state,
        # apart so that a lab database from before keeps its payments table as it is.
        """CREATE TABLE IF NOT EXISTS payment_states (id TEXT PRIMARY KEY, mode TEXT NOT NULL,
            status TEXT NOT NULL, changed_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS notifications (id TEXT PRIMARY KEY, province TEXT NOT NULL,
            dossier_id TEXT, commune_code TEXT, subject TEXT NOT NULL, content TEXT,
            created_at TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
            acknowledged_at TEXT, last_error TEXT)""",
        """CREATE TABLE IF NOT EXISTS admin_units (province TEXT PRIMARY KEY,
            province_name TEXT, communes TEXT NOT NULL, declared_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS portal_interfaces (province TEXT PRIMARY KEY,
            state TEXT NOT NULL, changed_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS agency_codes (province TEXT NOT NULL, code TEXT NOT NULL,
            name TEXT, published_at TEXT NOT NULL, PRIMARY KEY (province, code))""",
        *REGISTER_SCHEMA,  # which procedures system serves which commune (register.py)
    )

    key = b""

    def start(self) -> None:
        with self.db.tx() as tx:  # the signing key lives in the store: tokens survive restarts
            tx.run(
                "INSERT INTO portal_kv (key, value) VALUES ('sso_key', %s)"
                " ON CONFLICT (key) DO NOTHING",
                (secrets.token_hex(32),),
            )
            row = tx.one("SELECT value FROM portal_kv WHERE key = 'sso_key'")
        assert row is not None
        self.key = bytes.fromhex(row["value"])

    def routes(self, r: Routes) -> None:
        p = "/api/provinces/{province}"
        r.add("GET", "/sso/authorize", self.authorize)
        r.add("POST", "/sso/token", self.token)
        r.add("GET", "/sso/userinfo", self.userinfo)
        r.add("POST", f"{p}/dossier-records", self.upsert_records)
        r.add("GET", f"{p}/dossier-records/summary", self.records_summary)
        r.add("POST", "/api/payments", self.pay)
        r.add("GET", "/api/payments/{id}", self.payment)
        r.add("POST", "/api/payments/{id}/reverse", self.reverse_payment)
        r.add("POST", f"{p}/notifications", self.create_notification)
        r.add("GET", f"{p}/notifications/summary", self.notifications_summary)
        r.add("GET", "/api/notifications/{id}", self.notification)
        r.add("POST", "/api/notifications/{id}/deliver", self.redeliver)
        r.add("PUT", "/api/admin-units/{province}", self.declare_units)
        r.add("GET", "/api/admin-units/{province}", self.admin_units)
        r.add("GET", f"{p}/portal-interface", self.portal_interface)
        r.add("POST", p + "/portal-interface/{action}", self.set_portal_interface)
        r.add("PUT", f"{p}/agency-codes", self.publish_agencies)
        r.add("GET", f"{p}/agency-codes", self.agencies)
        self.register_routes(r)

    # -- single sign-on ---------------------------------------------------------------
    def authorize(self, req: Request) -> web.Response:
        q = req.query
        client = next((c for c in self.cfg.sso_clients if c.client_id == q.get("client_id")), None)
        if client is None:
            raise HTTPError(400, "invalid_client", "unknown client_id")
        uri = q.get("redirect_uri", "")
        if uri not in client.redirect_uris:
            raise HTTPError(400, "invalid_request", "redirect_uri not registered for client")
        if q.get("response_type", "code") != "code" or not q.get("state"):
            raise HTTPError(400, "invalid_request", "response_type=code and state are required")
        subject = (q.get("login_hint") or "test-citizen")[:64]  # auto-approved test citizen
        code = secrets.token_urlsafe(24)
        with self.db.tx() as tx:
            tx.run("DELETE FROM sso_codes WHERE expires_at < %s", (time.time() - 3600,))
            tx.run(
                "INSERT INTO sso_codes (code, client_id, redirect_uri, subject, expires_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (code, client.client_id, uri, subject, time.time() + CODE_TTL),
            )
        query = urllib.parse.urlencode({"code": code, "state": q["state"]})
        return redirect(f"{uri}{'&' if '?' in uri else '?'}{query}")

    def token(self, req: Request) -> web.Response:
        form = req.form()
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = req.header("authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:], validate=True).decode(errors="replace")
            except ValueError as exc:
                raise HTTPError(401, "invalid_client", "malformed Basic credentials") from exc
            client_id, _, secret = (urllib.parse.unquote(x) for x in decoded.partition(":"))
        client = next((c for c in self.cfg.sso_clients if c.client_id == client_id), None)
        if client is None or not hmac.compare_digest(
            secret.encode(), client.client_secret.encode()
        ):
            raise HTTPError(401, "invalid_client", "client authentication failed")
        if form.get("grant_type") != "authorization_code":
            raise HTTPError(400, "unsupported_grant_type", "grant_type=authorization_code")
        with self.db.tx() as tx:
            row = tx.one("SELECT * FROM sso_codes WHERE code = %s", (form.get("code", ""),))
            used = tx.run(
                "UPDATE sso_codes SET used = 1 WHERE code = %s AND used = 0",
                (form.get("code", ""),),
            )
        if (
            row is None
            or used != 1
            or row["client_id"] != client_id
            or row["expires_at"] < time.time()
            or row["redirect_uri"] != form.get("redirect_uri", row["redirect_uri"])
        ):
            raise HTTPError(400, "invalid_grant", "code unknown, used, expired or not yours")
        now = int(time.time())
        claims = {
            "iss": self.cfg.issuer,
            "sub": row["subject"],
            "aud": client_id,
            "iat": now,
            "exp": now + TOKEN_TTL,
            "scope": "openid",
        }
        return json_response(
            200,
            {
                "access_token": sign(claims, self.key),
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL,
                "scope": "openid",
            },
            {"Cache-Control": "no-store"},
        )

    def userinfo(self, req: Request) -> web.Response:
        auth = req.header("authorization") or ""
        try:
            if not auth.startswith("Bearer "):
                raise TokenError("no bearer token")
            claims = verify(auth[7:], self.key, time.time())
        except TokenError as exc:
            return json_response(
                401,
                {"error": "invalid_token", "detail": str(exc)},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return json_response(
            200,
            {
                "sub": claims["sub"],
                "name": f"Test citizen {claims['sub']}",
                "client_id": claims["aud"],
                "standin": True,
                "identity_provider": "VNeID (stand-in)",
            },
        )

    # -- dossier records --------------------------------------------------------------
    def upsert_records(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        records = req.json().get("records")
        if not isinstance(records, list) or not 0 < len(records) <= MAX_RECORDS:
            raise HTTPError(400, "invalid_request", f"records: a list of 1..{MAX_RECORDS}")
        rows = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise HTTPError(400, "invalid_request", f"records[{i}]: expected an object")
            rows.append(
                (
                    province,
                    need(rec, "id", max_len=64),
                    need(rec, "commune_code"),
                    need(rec, "procedure_code"),
                    need(rec, "status", max_len=32),
                    text(rec, "received_at", required=False),
                    need(rec, "updated_at"),
                    now_iso(),
                )
            )
        with self.db.tx() as tx:
            for row in rows:
                tx.run(
                    "INSERT INTO dossier_records (province, id, commune_code, procedure_code,"
                    " status, received_at, updated_at, synced_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (province, id)"
                    " DO UPDATE SET commune_code = excluded.commune_code,"
                    " procedure_code = excluded.procedure_code, status = excluded.status,"
                    " received_at = excluded.received_at, updated_at = excluded.updated_at,"
                    " synced_at = excluded.synced_at",
                    row,
                )
        return 200, {"province": province, "upserted": len(rows)}

    def records_summary(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        with self.db.tx() as tx:
            row = tx.one(
                "SELECT COUNT(*) AS count, COUNT(DISTINCT commune_code) AS communes,"
                " MAX(updated_at) AS latest_updated_at, MAX(synced_at) AS"
                " last_received_at FROM dossier_records WHERE province = %s",
                (province,),
            )
        return 200, {"province": province, **(row or {})}

    # -- payment ------------------------------------------------------------------------
    def pay(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        amount = body.get("amount")
        # mode: charge (money moves), test (the platform's test mode: nothing moves) or
        # authorize (a zero-value authorisation, to be reversed).
        mode = body.get("mode", "charge")
        if mode not in ("charge", "test", "authorize"):
            raise HTTPError(400, "invalid_request", "mode: one of charge, test, authorize")
        low = 0 if mode == "authorize" else 1
        high = 0 if mode == "authorize" else 10**10
        if isinstance(amount, bool) or not isinstance(amount, int) or not low <= amount <= high:
            what = "0 (a zero-value authorisation)" if mode == "authorize" else "a positive whole"
            raise HTTPError(400, "invalid_request", f"amount: {what} number of VND")
        if body.get("currency", "VND") != "VND":
            raise HTTPError(400, "invalid_request", "currency: only VND")
        status = "authorized" if mode == "authorize" else "paid"
        payment = {
            "transaction_id": new_id("tx"),
            "status": status,
            "test_mode": mode == "test",
            "amount": amount,
            "currency": "VND",
            "dossier_id": need(body, "dossier_id", max_len=64),
            "province": text(body, "province", required=False),
            "paid_at": now_iso(),
            "standin": True,
        }
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO payments (id, province, dossier_id, amount, currency, paid_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    payment["transaction_id"],
                    payment["province"],
                    payment["dossier_id"],
                    amount,
                    "VND",
                    payment["paid_at"],
                ),
            )
            if mode != "charge":
                tx.run(
                    "INSERT INTO payment_states (id, mode, status, changed_at)"
                    " VALUES (%s, %s, %s, %s)",
                    (payment["transaction_id"], mode, status, payment["paid_at"]),
                )
        return 201, payment

    def reverse_payment(self, req: Request) -> tuple[int, Any]:
        """Reverse a zero-value authorisation or a test payment (a real charge is refunded
        by the payment platform's own process, never by a monitoring check)."""
        tx_id = req.params["id"]
        with self.db.tx() as tx:
            row = tx.one("SELECT mode, status FROM payment_states WHERE id = %s", (tx_id,))
            if row is None:
                raise HTTPError(404, "not_found", "no test payment or authorisation with this id")
            tx.run(
                "UPDATE payment_states SET status = 'reversed', changed_at = %s WHERE id = %s",
                (now_iso(), tx_id),
            )
        return 200, {"transaction_id": tx_id, "mode": row["mode"], "status": "reversed"}

    def payment(self, req: Request) -> tuple[int, Any]:
        with self.db.tx() as tx:
            row = tx.one(
                "SELECT id AS transaction_id, province, dossier_id, amount, currency,"
                " paid_at FROM payments WHERE id = %s",
                (req.params["id"],),
            )
            state = tx.one(
                "SELECT mode, status FROM payment_states WHERE id = %s", (req.params["id"],)
            )
        if row is None:
            raise HTTPError(404, "not_found", "no such transaction")
        if state is None:
            return 200, {**row, "status": "paid", "test_mode": False}
        return 200, {**row, "status": state["status"], "test_mode": state["mode"] == "test"}

    # -- notification files -------------------------------------------------------------
    def create_notification(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        if not self.cfg.provinces.get(province, {}).get("procedures"):
            raise HTTPError(422, "unknown_province", f"provinces.{province}.procedures not set")
        body = req.json()
        row = (
            new_id("nt"),
            province,
            text(body, "dossier_id", required=False, max_len=64),
            text(body, "commune_code", required=False),
            need(body, "subject", max_len=500),
            text(body, "content", required=False, max_len=20000),
            now_iso(),
            "created",
            0,
        )
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO notifications (id, province, dossier_id, commune_code, subject,"
                " content, created_at, status, attempts)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                row,
            )
        self._redeliver_failed(province)
        return 201, self._deliver(row[0])

    def _redeliver_failed(self, province: str, limit: int = 20) -> None:
        """The portal's retry queue: files whose delivery failed (the province's system was
        restarting, say) are delivered again, oldest first, before a new one goes out; a
        failure that persists stays counted in the summary."""
        with self.db.tx() as tx:
            rows = tx.all(
                "SELECT id FROM notifications WHERE province = %s AND status = 'delivery_failed'"
                " ORDER BY created_at LIMIT %s",
                (province, limit),
            )
        for r in rows:
            self._deliver(r["id"])

    def _load_notification(self, nid: str) -> dict[str, Any]:
        with self.db.tx() as tx:
            row = tx.one(f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = %s", (nid,))
        if row is None:
            raise HTTPError(404, "not_found", "no such notification file")
        return row

    def _deliver(self, nid: str) -> dict[str, Any]:
        note = self._load_notification(nid)
        url = self.cfg.provinces.get(note["province"], {}).get("procedures", "").rstrip("/")
        payload = {
            k: note[k]
            for k in (
                "id",
                "province",
                "dossier_id",
                "commune_code",
                "subject",
                "content",
                "created_at",
            )
        }
        error, acked_at = None, None
        try:
            answer = self.client.call("POST", f"{url}/api/notifications", json_body=payload)
            body = answer.json()
            if 200 <= answer.status < 300 and isinstance(body, dict) and body.get("acknowledged"):
                acked_at = now_iso()
            else:
                error = f"procedures answered {answer.status}"
        except UpstreamUnavailable as exc:
            error = f"procedures unreachable: {exc.reason}"
        with self.db.tx() as tx:
            tx.run(
                "UPDATE notifications SET attempts = attempts + 1, status = %s,"
                " acknowledged_at = %s, last_error = %s WHERE id = %s",
                ("acknowledged" if acked_at else "delivery_failed", acked_at, error, nid),
            )
        return self._load_notification(nid)

    def notification(self, req: Request) -> tuple[int, Any]:
        return 200, self._load_notification(req.params["id"])

    def redeliver(self, req: Request) -> tuple[int, Any]:
        self._load_notification(req.params["id"])
        return 200, self._deliver(req.params["id"])

    def notifications_summary(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        with self.db.tx() as tx:
            rows = tx.all(
                "SELECT status, COUNT(*) AS n, MAX(acknowledged_at) AS latest"
                " FROM notifications WHERE province = %s GROUP BY status",
                (province,),
            )
        by = {r["status"]: r for r in rows}
        return 200, {
            "province": province,
            "total": sum(r["n"] for r in rows),
            "acknowledged": by.get("acknowledged", {}).get("n", 0),
            "delivery_failed": by.get("delivery_failed", {}).get("n", 0),
            "latest_acknowledged_at": by.get("acknowledged", {}).get("latest"),
        }

    # -- National Administrative Procedures Database: administrative units --------------
    def declare_units(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        body = req.json()
        communes = body.get("communes")
        if (
            not isinstance(communes, list)
            or not communes
            or not all(isinstance(c, str) and COMMUNE_CODE.match(c) for c in communes)
            or len(set(communes)) != len(communes)
        ):
            raise HTTPError(400, "invalid_request", "communes: distinct five-digit codes")
        name, declared_at = text(body, "province_name", required=False), now_iso()
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO admin_units (province, province_name, communes, declared_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (province) DO UPDATE SET"
                " province_name = excluded.province_name, communes = excluded.communes,"
                " declared_at = excluded.declared_at",
                (province, name, json.dumps(sorted(communes)), declared_at),
            )
        return 200, {
            "province": province,
            "province_name": name,
            "commune_count": len(communes),
            "declared_at": declared_at,
        }

    def admin_units(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        with self.db.tx() as tx:
            row = tx.one("SELECT * FROM admin_units WHERE province = %s", (province,))
        if row is None:
            raise HTTPError(404, "not_declared", f"{province}: no administrative units declared")
        communes = json.loads(row["communes"])
        return 200, {**row, "communes": communes, "commune_count": len(communes)}

    # -- provincial portal interface ----------------------------------------------------
    def portal_interface(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        with self.db.tx() as tx:
            row = tx.one(
                "SELECT state, changed_at FROM portal_interfaces WHERE province = %s", (province,)
            )
        return 200, {"province": province, **(row or {"state": "open", "changed_at": None})}

    def set_portal_interface(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        action = req.params["action"]
        if action not in ("close", "open"):
            raise HTTPError(404, "not_found", req.path)
        state = "closed" if action == "close" else "open"
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO portal_interfaces (province, state, changed_at)"
                " VALUES (%s, %s, %s) ON CONFLICT (province) DO UPDATE SET"
                " state = excluded.state, changed_at = excluded.changed_at",
                (province, state, now_iso()),
            )
        return self.portal_interface(req)

    # -- agencies' electronic identification codes --------------------------------------
    def publish_agencies(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        agencies = req.json().get("agencies")
        if not isinstance(agencies, list) or not all(isinstance(a, dict) for a in agencies):
            raise HTTPError(400, "invalid_request", "agencies: a list of {code, name}")
        rows = [
            (
                province,
                need(a, "code", pattern=AGENCY_CODE),
                text(a, "name", required=False, max_len=500),
                now_iso(),
            )
            for a in agencies
        ]
        with self.db.tx() as tx:
            tx.run("DELETE FROM agency_codes WHERE province = %s", (province,))
            for row in rows:
                tx.run(
                    "INSERT INTO agency_codes (province, code, name, published_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (province, code) DO NOTHING",
                    row,
                )
        return 200, {
            "province": province,
            "count": len({r[1] for r in rows}),
            "published_at": now_iso(),
        }

    def agencies(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        with self.db.tx() as tx:
            rows = tx.all(
                "SELECT code, name, published_at FROM agency_codes"
                " WHERE province = %s ORDER BY code",
                (province,),
            )
        return 200, {"province": province, "count": len(rows), "agencies": rows}
