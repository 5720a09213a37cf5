"""procedures: the provincial administrative-procedure settlement system (dossiers per commune,
sync to the national portal, SSO relying party, payment, notification files)."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import asdict
from typing import Any

from aiohttp import web

from .core import HTTPError, UpstreamUnavailable, need, new_id, now_iso, parse_iso, text
from .service import Env, Request, Routes, Service, redirect

BATCH = 500
MAX_BATCHES = 50
STATE_TTL = 600
DOSSIER_COLUMNS = (
    "id, commune_code, procedure_code, applicant, status, received_at, updated_at, synced_at"
)


class Procedures(Service):
    schema = (
        """CREATE TABLE IF NOT EXISTS dossiers (id TEXT PRIMARY KEY, commune_code TEXT NOT NULL,
            procedure_code TEXT NOT NULL, applicant TEXT NOT NULL, status TEXT NOT NULL,
            received_at TEXT NOT NULL, updated_at TEXT NOT NULL, synced_at TEXT)""",
        "CREATE INDEX IF NOT EXISTS dossiers_unsynced ON dossiers (updated_at)"
        " WHERE synced_at IS NULL",
        """CREATE TABLE IF NOT EXISTS sync_state (id INTEGER PRIMARY KEY, last_sync_at TEXT,
            last_error TEXT)""",
        """CREATE TABLE IF NOT EXISTS sso_states (state TEXT PRIMARY KEY,
            redirect_uri TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            used INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE IF NOT EXISTS payments (transaction_id TEXT PRIMARY KEY,
            dossier_id TEXT NOT NULL, amount BIGINT NOT NULL, paid_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS notifications (id TEXT PRIMARY KEY, subject TEXT NOT NULL,
            content TEXT, dossier_id TEXT, commune_code TEXT, received_at TEXT NOT NULL,
            processed INTEGER NOT NULL)""",
    )

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.sync_lock = threading.Lock()
        self.stopping = threading.Event()
        self.worker: threading.Thread | None = None

    def routes(self, r: Routes) -> None:
        r.add("GET", "/api/communes", self.communes)
        r.add("POST", "/api/dossiers", self.submit)
        r.add("GET", "/api/dossiers/coverage", self.coverage)
        r.add("GET", "/api/dossiers/{id}", self.dossier)
        r.add("DELETE", "/api/dossiers/{id}", self.withdraw)
        r.add("POST", "/api/sync", lambda req: (200, self.sync()))
        r.add("GET", "/api/sync/status", lambda req: (200, self.sync_status()))
        r.add("GET", "/sso/login", self.sso_login)
        r.add("GET", "/sso/callback", self.sso_callback)
        r.add("POST", "/api/payments/test", self.test_payment)
        r.add("POST", "/api/notifications", self.receive_notification)
        r.add("GET", "/api/notifications", self.notifications)

    # -- background sync ------------------------------------------------------------------
    def start(self) -> None:
        if self.cfg.sync_interval_seconds > 0:
            self.worker = threading.Thread(target=self._sync_loop, name="standin-sync", daemon=True)
            self.worker.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.worker is not None:
            self.worker.join(timeout=10)

    def _sync_loop(self) -> None:
        while not self.stopping.wait(self.cfg.sync_interval_seconds):
            try:
                self.sync()
            except Exception as exc:  # logged and retried at the next tick
                self.log("sync_failed", level="warning", error=str(exc))

    # -- dossiers ---------------------------------------------------------------------------
    def communes(self, req: Request) -> tuple[int, Any]:
        return 200, {
            "province": self.cfg.province,
            "province_name": self.cfg.province_name,
            "count": len(self.cfg.communes),
            "communes": [asdict(c) for c in self.cfg.communes],
        }

    def submit(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        commune = need(body, "commune_code")
        procedure = need(body, "procedure_code", max_len=64)
        applicant = body.get("applicant")
        if not isinstance(applicant, dict):
            raise HTTPError(400, "invalid_request", "applicant: an object")
        if commune not in self.cfg.commune_codes:
            raise HTTPError(
                422, "unknown_commune", f"{commune} is not a commune of {self.cfg.province}"
            )
        if self.faults.refuses(commune):
            raise HTTPError(422, "commune_refused", f"fault injected: {commune} refused")
        now = now_iso()
        dossier = {
            "id": new_id("hs"),
            "commune_code": commune,
            "procedure_code": procedure,
            "status": "received",
            "received_at": now,
        }
        with self.db.tx() as tx:
            tx.run(
                f"INSERT INTO dossiers ({DOSSIER_COLUMNS}) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, NULL)",
                (
                    dossier["id"],
                    commune,
                    procedure,
                    json.dumps(applicant, ensure_ascii=False),
                    "received",
                    now,
                    now,
                ),
            )
        return 201, dossier

    def dossier(self, req: Request) -> tuple[int, Any]:
        with self.db.tx() as tx:
            row = tx.one(
                f"SELECT {DOSSIER_COLUMNS} FROM dossiers WHERE id = %s", (req.params["id"],)
            )
        if row is None:
            raise HTTPError(404, "not_found", "no such dossier")
        return 200, {**row, "applicant": json.loads(row["applicant"])}

    def withdraw(self, req: Request) -> tuple[int, Any]:
        """Withdraw a synthetic dossier (its applicant says `synthetic: true`); a real one is
        refused, whoever asks: monitoring must never be able to erase a citizen's dossier."""
        dossier_id = req.params["id"]
        with self.db.tx() as tx:
            row = tx.one("SELECT applicant FROM dossiers WHERE id = %s", (dossier_id,))
            if row is None:
                raise HTTPError(404, "not_found", "no such dossier")
            applicant = json.loads(row["applicant"])
            if not (isinstance(applicant, dict) and applicant.get("synthetic") is True):
                raise HTTPError(409, "not_synthetic", f"{dossier_id} is not a synthetic dossier")
            tx.run("DELETE FROM dossiers WHERE id = %s", (dossier_id,))
        self.log("dossier_withdrawn", dossier=dossier_id)
        return 200, {"withdrawn": True, "id": dossier_id}

    def coverage(self, req: Request) -> tuple[int, Any]:
        with self.db.tx() as tx:
            rows = tx.all("SELECT DISTINCT commune_code FROM dossiers")
        covered = {r["commune_code"] for r in rows} & self.cfg.commune_codes
        missing = sorted(self.cfg.commune_codes - covered)
        return 200, {
            "communes_total": len(self.cfg.communes),
            "communes_with_dossiers": len(covered),
            "missing": missing,
            "complete": not missing,
        }

    # -- sync to the national portal --------------------------------------------------------
    def sync(self) -> dict[str, Any]:
        url = f"{self.counterpart('portal')}/api/provinces/{self.cfg.province}/dossier-records"
        pushed = 0
        with self.sync_lock:
            try:
                for _ in range(MAX_BATCHES):
                    with self.db.tx() as tx:
                        rows = tx.all(
                            "SELECT id, commune_code, procedure_code, status,"
                            " received_at, updated_at FROM dossiers WHERE synced_at"
                            " IS NULL ORDER BY updated_at LIMIT %s",
                            (BATCH,),
                        )
                    if not rows:
                        break
                    answer = self.client.call("POST", url, json_body={"records": rows})
                    if answer.status != 200:
                        raise HTTPError(
                            502,
                            "portal_refused",
                            f"portal answered {answer.status}",
                            upstream=answer.json(),
                        )
                    with self.db.tx() as tx:
                        for row in rows:
                            tx.run(
                                "UPDATE dossiers SET synced_at = %s WHERE id = %s"
                                " AND updated_at = %s",
                                (now_iso(), row["id"], row["updated_at"]),
                            )
                    pushed += len(rows)
            except (HTTPError, UpstreamUnavailable) as exc:
                self._record_sync(error=str(exc))
                raise
            self._record_sync(error=None)
        self.log("synced", pushed=pushed)
        return {"pushed": pushed, **self.sync_status()}

    def _record_sync(self, error: str | None) -> None:
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO sync_state (id, last_sync_at, last_error) VALUES (1, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET last_error = excluded.last_error,"
                " last_sync_at = CASE WHEN excluded.last_error IS NULL"
                " THEN excluded.last_sync_at ELSE sync_state.last_sync_at END",
                (now_iso() if error is None else None, error),
            )

    def sync_status(self) -> dict[str, Any]:
        with self.db.tx() as tx:
            pending = tx.one(
                "SELECT COUNT(*) AS n, MIN(updated_at) AS oldest FROM dossiers"
                " WHERE synced_at IS NULL"
            )
            state = tx.one("SELECT last_sync_at, last_error FROM sync_state WHERE id = 1")
        assert pending is not None
        oldest = pending["oldest"]
        lag = max(0.0, time.time() - parse_iso(oldest)) if oldest else 0.0
        return {
            "pending": pending["n"],
            "lag_seconds": round(lag, 3),
            **(state or {"last_sync_at": None, "last_error": None}),
        }

    # -- single sign-on (relying party of the national portal) -------------------------------
    def _redirect_uri(self, req: Request) -> str:
        assert self.cfg.sso is not None
        if self.cfg.sso.redirect_uri:
            return self.cfg.sso.redirect_uri
        proto = req.header("x-forwarded-proto") or "http"
        return f"{proto}://{req.header('host') or self.cfg.host}/sso/callback"

    def sso_login(self, req: Request) -> web.Response:
        sso = self.cfg.sso
        assert sso is not None
        state, uri = secrets.token_urlsafe(16), self._redirect_uri(req)
        with self.db.tx() as tx:
            tx.run("DELETE FROM sso_states WHERE created_at < %s", (time.time() - STATE_TTL,))
            tx.run(
                "INSERT INTO sso_states (state, redirect_uri, created_at) VALUES (%s, %s, %s)",
                (state, uri, time.time()),
            )
        query = {
            "response_type": "code",
            "client_id": sso.client_id,
            "redirect_uri": uri,
            "state": state,
            "scope": "openid",
        }
        if req.query.get("login_hint"):
            query["login_hint"] = req.query["login_hint"]
        issuer = (sso.issuer or self.counterpart("portal")).rstrip("/")
        return redirect(f"{issuer}/sso/authorize?{urllib.parse.urlencode(query)}")

    def sso_callback(self, req: Request) -> tuple[int, Any]:
        sso, q = self.cfg.sso, req.query
        assert sso is not None
        if "error" in q:
            raise HTTPError(400, "sso_denied", q["error"])
        with self.db.tx() as tx:
            row = tx.one(
                "SELECT redirect_uri FROM sso_states WHERE state = %s AND used = 0"
                " AND created_at > %s",
                (q.get("state", ""), time.time() - STATE_TTL),
            )
            tx.run("UPDATE sso_states SET used = 1 WHERE state = %s", (q.get("state", ""),))
        if row is None or not q.get("code"):
            raise HTTPError(400, "invalid_state", "unknown, used or expired state, or no code")
        portal = self.counterpart("portal")
        answer = self.client.call(
            "POST",
            f"{portal}/sso/token",
            form={
                "grant_type": "authorization_code",
                "code": q["code"],
                "redirect_uri": row["redirect_uri"],
                "client_id": sso.client_id,
                "client_secret": sso.client_secret,
            },
        )
        token = answer.json() if answer.status == 200 else None
        if not isinstance(token, dict) or "access_token" not in token:
            raise HTTPError(502, "sso_token_failed", f"token endpoint answered {answer.status}")
        info = self.client.call(
            "GET",
            f"{portal}/sso/userinfo",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        user = info.json()
        if info.status != 200 or not isinstance(user, dict):
            raise HTTPError(502, "sso_userinfo_failed", f"userinfo answered {info.status}")
        self.log("sso_login")
        return 200, {"authenticated": True, "subject": user.get("sub"), "name": user.get("name")}

    # -- payment ------------------------------------------------------------------------------
    def test_payment(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        request = {
            "province": self.cfg.province,
            "amount": body.get("amount", 10000),
            "dossier_id": text(body, "dossier_id", required=False, max_len=64) or new_id("test"),
            "currency": "VND",
            # Passed through to the platform: test (its test mode) or authorize (zero value).
            "mode": body.get("mode", "charge"),
        }
        answer = self.client.call(
            "POST", f"{self.counterpart('portal')}/api/payments", json_body=request
        )
        paid = answer.json()
        if answer.status == 400:
            raise HTTPError(400, "invalid_request", "portal refused the payment", upstream=paid)
        done = ("paid", "authorized")
        if answer.status != 201 or not isinstance(paid, dict) or paid.get("status") not in done:
            raise HTTPError(
                502, "payment_failed", f"portal answered {answer.status}", upstream=paid
            )
        with self.db.tx() as tx:
            tx.run(
                "INSERT INTO payments (transaction_id, dossier_id, amount, paid_at)"
                " VALUES (%s, %s, %s, %s)",
                (paid["transaction_id"], request["dossier_id"], paid["amount"], paid["paid_at"]),
            )
        return 201, paid

    # -- notification files from the national portal ----------------------------------------
    def receive_notification(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        nid = need(body, "id", max_len=64)
        row = (
            nid,
            need(body, "subject", max_len=500),
            text(body, "content", required=False, max_len=20000),
            text(body, "dossier_id", required=False, max_len=64),
            text(body, "commune_code", required=False),
            now_iso(),
        )
        with self.db.tx() as tx:
            again = tx.one("SELECT received_at FROM notifications WHERE id = %s", (nid,))
            if again is None:
                tx.run(
                    "INSERT INTO notifications (id, subject, content, dossier_id,"
                    " commune_code, received_at, processed) VALUES (%s, %s, %s, %s, %s, %s, 1)",
                    row,
                )
        return (200 if again else 201), {
            "acknowledged": True,
            "processed": True,
            "notification_id": nid,
            "received_at": (again or {}).get("received_at", row[5]),
        }

    def notifications(self, req: Request) -> tuple[int, Any]:
        with self.db.tx() as tx:
            rows = tx.all("SELECT * FROM notifications ORDER BY received_at DESC LIMIT 100")
            total = tx.one("SELECT COUNT(*) AS n FROM notifications")
        return 200, {"count": (total or {}).get("n", 0), "notifications": rows}
