"""national-portal: the register of which provincial procedures system serves which commune,
and dossiers submitted through the portal, routed by it (docs/standins-contract.md §5).

Go-live points a province's communes at its configured procedures system (`provinces.{p}`),
keeping what each pointed at before; rollback puts that back. A dossier submitted here lands
in the system the register names, so a probe sees where citizens' dossiers go.
"""

from __future__ import annotations

from typing import Any

from .core import COMMUNE_CODE, HTTPError, UpstreamUnavailable, need, now_iso, province_param
from .service import Request, Routes

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS commune_systems (commune_code TEXT PRIMARY KEY,
        province TEXT NOT NULL, procedures TEXT NOT NULL, previous_province TEXT,
        previous_procedures TEXT, changed_at TEXT NOT NULL)""",
)
MAX_COMMUNES = 5000


def _communes(body: dict[str, Any]) -> list[str]:
    """`communes`: five-digit codes, or objects with a `code` (the runbook's commune list)."""
    raw = body.get("communes")
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_COMMUNES:
        raise HTTPError(400, "invalid_request", f"communes: a list of 1..{MAX_COMMUNES}")
    codes = [c.get("code") if isinstance(c, dict) else c for c in raw]
    bad = [c for c in codes if not isinstance(c, str) or not COMMUNE_CODE.match(c)]
    if bad:
        raise HTTPError(400, "invalid_request", "communes: five-digit codes", bad=bad[:5])
    return sorted(set(codes))  # type: ignore[arg-type]


class CommuneRegister:
    """Mixed into the portal (its db, cfg, client)."""

    db: Any
    cfg: Any
    client: Any

    def register_routes(self, r: Routes) -> None:
        p = "/api/provinces/{province}/commune-systems"
        r.add("GET", p, self.register_summary)
        r.add("POST", p + "/go-live", self.register_go_live)
        r.add("POST", p + "/rollback", self.register_rollback)
        r.add("GET", "/api/communes/{code}/system", self.commune_system)
        r.add("PUT", "/api/communes/{code}/system", self.set_commune_system)
        r.add("POST", "/api/dossiers", self.submit_dossier)

    def _configured(self, province: str, body: dict[str, Any]) -> str:
        url = body.get("procedures") or self.cfg.provinces.get(province, {}).get("procedures")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise HTTPError(422, "unknown_province", f"provinces.{province}.procedures not set")
        return url.rstrip("/")

    def _point(self, tx: Any, code: str, province: str, url: str) -> bool:
        row = tx.one("SELECT * FROM commune_systems WHERE commune_code = %s", (code,))
        if row is not None and row["procedures"] == url and row["province"] == province:
            return False  # already there: the previous entry stays what it was
        tx.run(
            "INSERT INTO commune_systems (commune_code, province, procedures, previous_province,"
            " previous_procedures, changed_at) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (commune_code) DO UPDATE SET province = excluded.province,"
            " procedures = excluded.procedures, previous_province = excluded.previous_province,"
            " previous_procedures = excluded.previous_procedures, changed_at = excluded.changed_at",
            (
                code,
                province,
                url,
                row and row["province"],
                row and row["procedures"],
                now_iso(),
            ),
        )
        return True

    def register_go_live(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        body = req.json()
        url, codes = self._configured(province, body), _communes(body)
        with self.db.tx() as tx:
            changed = sum(self._point(tx, code, province, url) for code in codes)
        return 200, {**self._summary(province, url), "changed": changed}

    def register_rollback(self, req: Request) -> tuple[int, Any]:
        """Communes pointing at the province's new system go back to what they pointed at
        before go-live (or leave the register if nothing did): idempotent."""
        province = province_param(req.params["province"])
        body = req.json()
        url = self._configured(province, body)
        with self.db.tx() as tx:
            rows = tx.all(
                "SELECT * FROM commune_systems WHERE province = %s AND procedures = %s",
                (province, url),
            )
            for row in rows:
                if row["previous_procedures"]:
                    tx.run(
                        "UPDATE commune_systems SET province = %s, procedures = %s,"
                        " previous_province = NULL, previous_procedures = NULL, changed_at = %s"
                        " WHERE commune_code = %s",
                        (
                            row["previous_province"],
                            row["previous_procedures"],
                            now_iso(),
                            row["commune_code"],
                        ),
                    )
                else:
                    tx.run(
                        "DELETE FROM commune_systems WHERE commune_code = %s",
                        (row["commune_code"],),
                    )
        return 200, {**self._summary(province, url), "reverted": len(rows)}

    def _summary(self, province: str, url: str) -> dict[str, Any]:
        with self.db.tx() as tx:
            row = tx.one(
                "SELECT COUNT(*) AS n, MAX(changed_at) AS changed_at FROM commune_systems"
                " WHERE province = %s AND procedures = %s",
                (province, url),
            )
        return {
            "province": province,
            "procedures": url,
            "commune_count": int((row or {}).get("n") or 0),
            "changed_at": (row or {}).get("changed_at"),
        }

    def register_summary(self, req: Request) -> tuple[int, Any]:
        province = province_param(req.params["province"])
        return 200, self._summary(province, self._configured(province, {}))

    def _entry(self, code: str) -> dict[str, Any]:
        if not COMMUNE_CODE.match(code):
            raise HTTPError(400, "invalid_request", "commune code: five digits")
        with self.db.tx() as tx:
            row = tx.one("SELECT * FROM commune_systems WHERE commune_code = %s", (code,))
        if row is None:
            raise HTTPError(404, "not_registered", f"commune {code}: no system registered")
        return dict(row)

    def commune_system(self, req: Request) -> tuple[int, Any]:
        return 200, self._entry(req.params["code"])

    def set_commune_system(self, req: Request) -> tuple[int, Any]:
        """Register a commune's system by hand (the old province's, before the cutover)."""
        code = req.params["code"]
        if not COMMUNE_CODE.match(code):
            raise HTTPError(400, "invalid_request", "commune code: five digits")
        body = req.json()
        province = province_param(need(body, "province"))
        url = need(body, "procedures", max_len=500)
        if not url.startswith(("http://", "https://")):
            raise HTTPError(400, "invalid_request", "procedures: an http(s) URL")
        with self.db.tx() as tx:
            self._point(tx, code, province, url.rstrip("/"))
        return 200, self._entry(code)

    def submit_dossier(self, req: Request) -> tuple[int, Any]:
        """A citizen's dossier through the national portal: it goes to the commune's system."""
        body = req.json()
        code = need(body, "commune_code")
        entry = self._entry(code) if COMMUNE_CODE.match(code) else None
        if entry is None:
            raise HTTPError(400, "invalid_request", "commune_code: five digits")
        url = entry["procedures"]
        payload = {k: body.get(k) for k in ("commune_code", "procedure_code", "applicant")}
        try:
            answer = self.client.call("POST", f"{url}/api/dossiers", json_body=payload)
        except UpstreamUnavailable as exc:
            raise HTTPError(
                502, "procedures_unavailable", exc.reason, url=url, province=entry["province"]
            ) from None
        document = answer.json()
        if answer.status != 201 or not isinstance(document, dict):
            raise HTTPError(
                422 if 400 <= answer.status < 500 else 502,
                "procedures_refused",
                f"procedures answered {answer.status}",
                url=url,
                upstream=document,
            )
        return 201, {**document, "routed_to": url, "province": entry["province"]}
