"""The stand-ins as services: nine of them in-process on loopback, provincial state in a real
PostgreSQL (tests/fixtures/postgres.py), national state in SQLite, plain HTTP between them.

Scenarios are named by what an official, a citizen or a probe does (docs/standins-contract.md).
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import vietnam_provinces as vp

from govops.lab.standins.app import Running, start
from govops.lab.standins.config import parse_config
from govops.lab.standins.core import NOTICE, Logger
from tests.fixtures.postgres import PostgresServer, free_port

PROVINCE = "hue"
COMMUNES = [
    {"code": f"{int(w.code):05d}", "name": w.name, "type": w.division_type.value}
    for w in vp.Ward.iter_by_province(46)
]
AGENCY_A, AGENCY_B = "000.00.46.H57", "000.00.47.H57"
SSO_SECRET, FAULT_TOKEN = "s3cret-sso-value-123", "fault-token-xyz-789"
PROVINCIAL = ("procedures", "documents", "lgsp", "reporting", "meetings")
NATIONAL = ("national-portal", "national-docaxis", "national-ndxp", "national-reporting")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirect())


def call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with OPENER.open(req, timeout=30) as resp:
            status, raw, hdrs = resp.status, resp.read(), dict(resp.headers.items())
    except urllib.error.HTTPError as exc:
        status, raw, hdrs = exc.code, exc.read(), dict(exc.headers.items())
    return status, json.loads(raw) if raw else None, hdrs


@dataclass
class Lab:
    pg: PostgresServer
    tmp: Path
    urls: dict[str, str] = field(default_factory=dict)
    running: dict[str, Running] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, io.StringIO] = field(default_factory=dict)

    def config(self, kind: str, port: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": kind,
            "listen": f"127.0.0.1:{port}",
            "fault_token_file": str(self.tmp / "fault-token"),
            "counterparts": {
                "portal": self.urls["national-portal"],
                "docaxis": self.urls["national-docaxis"],
                "ndxp": self.urls["national-ndxp"],
                "reporting": self.urls["national-reporting"],
                "lgsp": self.urls["lgsp"],
            },
        }
        if kind in PROVINCIAL:
            data |= {
                "province": PROVINCE,
                "province_name": "Thành phố Huế",
                "communes": COMMUNES,
                "agencies": [
                    {"code": AGENCY_A, "name": "Văn phòng UBND thành phố"},
                    {"code": AGENCY_B, "name": "Sở Nội vụ"},
                ],
                "database": {
                    "dsn": self.pg.create_database(f"{PROVINCE}_{kind}_{port}"),
                    "sslmode": "disable",
                },
            }
        else:
            data["state_path"] = str(self.tmp / f"{kind}-{port}.sqlite3")
        if kind == "procedures":
            data["sso"] = {
                "client_id": "hue-procedures",
                "client_secret_file": str(self.tmp / "sso-secret"),
                "redirect_uri": f"{self.urls['procedures']}/sso/callback",
            }
        if kind == "reporting":  # reports travel through the provincial LGSP
            data["counterparts"]["reporting"] = f"{self.urls['lgsp']}/gw/reporting"
        if kind == "national-portal":
            data["sso_clients"] = [
                {
                    "client_id": "hue-procedures",
                    "client_secret_file": str(self.tmp / "sso-secret"),
                    "redirect_uris": [f"{self.urls['procedures']}/sso/callback"],
                }
            ]
            data["provinces"] = {PROVINCE: {"procedures": self.urls["procedures"]}}
        return data

    def start(self, kind: str, data: dict[str, Any] | None = None) -> Running:
        data = data or self.configs[kind]
        self.configs[kind] = data
        self.logs[kind] = io.StringIO()
        running = start(parse_config(data, f"<{kind}>"), Logger(self.logs[kind], kind=kind))
        self.running[kind] = running
        return running

    def stop(self) -> None:
        for running in self.running.values():
            running.stop()


@pytest.fixture(scope="module")
def lab(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("standins")
    (tmp / "sso-secret").write_text(SSO_SECRET + "\n")
    (tmp / "fault-token").write_text(FAULT_TOKEN + "\n")
    lab = Lab(postgres, tmp)
    ports = {kind: free_port() for kind in NATIONAL + PROVINCIAL}
    lab.urls = {kind: f"http://127.0.0.1:{port}" for kind, port in ports.items()}
    try:
        for kind in NATIONAL + PROVINCIAL:
            lab.start(kind, lab.config(kind, ports[kind]))
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def faults(lab: Lab) -> Iterator[Any]:
    """Set a fault on a stand-in; every fault set is cleared after the test."""
    touched: set[str] = set()

    def put(kind: str, **fault: Any) -> tuple[int, Any, dict[str, str]]:
        touched.add(kind)
        return call("PUT", f"{lab.urls[kind]}/_faults", fault, {"X-Fault-Token": FAULT_TOKEN})

    yield put
    for kind in touched:
        call("DELETE", f"{lab.urls[kind]}/_faults", headers={"X-Fault-Token": FAULT_TOKEN})


# -- every kind ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", NATIONAL + PROVINCIAL)
def test_a_probe_sees_every_standin_alive_ready_and_honestly_named(lab: Lab, kind: str) -> None:
    url = lab.urls[kind]
    assert call("GET", f"{url}/healthz")[0] == 200
    status, ready, _ = call("GET", f"{url}/readyz")
    assert status == 200
    assert ready["database"] == ("postgresql" if kind in PROVINCIAL else "sqlite")
    status, version, headers = call("GET", f"{url}/version")
    assert status == 200
    assert version["standin"] is True and version["kind"] == kind and version["version"]
    assert headers["X-Standin"] == NOTICE
    status, root, _ = call("GET", f"{url}/")
    assert root["notice"] == NOTICE and root["endpoints"]
    assert call("GET", f"{url}/no/such/thing")[0] == 404


# -- the national readiness checks -----------------------------------------------------------
def test_province_declares_its_new_administrative_units_in_napd(lab: Lab) -> None:
    portal = lab.urls["national-portal"]
    assert call("GET", f"{portal}/api/admin-units/{PROVINCE}")[0] == 404
    codes = [c["code"] for c in COMMUNES]
    status, body, _ = call(
        "PUT",
        f"{portal}/api/admin-units/{PROVINCE}",
        {"province_name": "Thành phố Huế", "communes": codes},
    )
    assert status == 200 and body["commune_count"] == len(codes)
    status, body, _ = call("GET", f"{portal}/api/admin-units/{PROVINCE}")
    assert status == 200 and sorted(body["communes"]) == sorted(codes)
    assert call("PUT", f"{portal}/api/admin-units/{PROVINCE}", {"communes": ["12"]})[0] == 400


def test_province_closes_its_portal_interface(lab: Lab) -> None:
    base = f"{lab.urls['national-portal']}/api/provinces/{PROVINCE}/portal-interface"
    assert call("GET", base)[1]["state"] == "open"
    status, body, _ = call("POST", f"{base}/close")
    assert status == 200 and body["state"] == "closed" and body["changed_at"]
    assert call("GET", base)[1]["state"] == "closed"
    assert call("POST", f"{base}/open")[1]["state"] == "open"


def test_citizen_signs_in_to_the_provincial_system_through_national_sso(lab: Lab) -> None:
    status, _, headers = call("GET", f"{lab.urls['procedures']}/sso/login?login_hint=046099001234")
    assert status == 302
    authorize = headers["Location"]
    assert authorize.startswith(f"{lab.urls['national-portal']}/sso/authorize?")
    status, _, headers = call("GET", authorize)
    assert status == 302
    callback = headers["Location"]
    assert callback.startswith(f"{lab.urls['procedures']}/sso/callback?")
    status, body, _ = call("GET", callback)
    assert status == 200, body
    assert body == {
        "authenticated": True,
        "subject": "046099001234",
        "name": "Test citizen 046099001234",
    }
    # neither the state nor the code can be replayed
    assert call("GET", callback)[1]["error"] == "invalid_state"
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)["code"][0]
    form = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "hue-procedures",
            "client_secret": SSO_SECRET,
        }
    )
    req = urllib.request.Request(
        f"{lab.urls['national-portal']}/sso/token",
        form.encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400 and json.loads(err.value.read())["error"] == "invalid_grant"
    assert (
        call(
            "GET",
            f"{lab.urls['national-portal']}/sso/userinfo",
            headers={"Authorization": "Bearer x.y.z"},
        )[0]
        == 401
    )
    assert SSO_SECRET not in "".join(log.getvalue() for log in lab.logs.values())


def test_relying_party_may_authenticate_with_http_basic(lab: Lab) -> None:
    portal, callback = lab.urls["national-portal"], f"{lab.urls['procedures']}/sso/callback"
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": "hue-procedures",
            "redirect_uri": callback,
            "state": "s1",
        }
    )
    status, _, headers = call("GET", f"{portal}/sso/authorize?{query}")
    assert status == 302
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(headers["Location"]).query)["code"][0]
    basic = base64.b64encode(f"hue-procedures:{SSO_SECRET}".encode()).decode()
    req = urllib.request.Request(
        f"{portal}/sso/token",
        urllib.parse.urlencode({"grant_type": "authorization_code", "code": code}).encode(),
        {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        token = json.loads(resp.read())
    assert token["token_type"] == "Bearer" and token["expires_in"] == 300
    status, user, _ = call(
        "GET",
        f"{portal}/sso/userinfo",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert status == 200 and user["sub"] == "test-citizen"
    bad = urllib.parse.urlencode(
        {**dict(urllib.parse.parse_qsl(query)), "redirect_uri": "https://evil.example/cb"}
    )
    assert call("GET", f"{portal}/sso/authorize?{bad}")[1]["error"] == "invalid_request"


def test_citizen_submits_a_dossier_in_every_commune_and_unknown_commune_is_refused(
    lab: Lab,
) -> None:
    procedures = lab.urls["procedures"]
    status, listing, _ = call("GET", f"{procedures}/api/communes")
    assert status == 200 and listing["count"] == len(COMMUNES) == 40
    for commune in COMMUNES:
        status, dossier, _ = call(
            "POST",
            f"{procedures}/api/dossiers",
            {
                "commune_code": commune["code"],
                "procedure_code": "1.001612",
                "applicant": {"name": "Nguyễn Văn A"},
            },
        )
        assert status == 201, dossier
        assert dossier["status"] == "received" and dossier["commune_code"] == commune["code"]
    status, again, _ = call("GET", f"{procedures}/api/dossiers/{dossier['id']}")
    assert status == 200 and again["applicant"] == {"name": "Nguyễn Văn A"}
    status, body, _ = call(
        "POST",
        f"{procedures}/api/dossiers",
        {"commune_code": "99999", "procedure_code": "1.001612", "applicant": {}},
    )
    assert status == 422 and body["error"] == "unknown_commune"
    assert call("POST", f"{procedures}/api/dossiers", {"commune_code": "19900"})[0] == 400
    status, coverage, _ = call("GET", f"{procedures}/api/dossiers/coverage")
    assert coverage["complete"] is True and coverage["communes_with_dossiers"] == 40


def test_dossier_records_sync_to_the_national_portal_until_lag_is_zero(lab: Lab) -> None:
    procedures, portal = lab.urls["procedures"], lab.urls["national-portal"]
    for code in ("19900", "20014"):
        call(
            "POST",
            f"{procedures}/api/dossiers",
            {
                "commune_code": code,
                "procedure_code": "2.000046",
                "applicant": {"name": "Trần Thị B"},
            },
        )
    time.sleep(0.05)
    status, before, _ = call("GET", f"{procedures}/api/sync/status")
    assert status == 200 and before["pending"] >= 2 and before["lag_seconds"] > 0
    status, result, _ = call("POST", f"{procedures}/api/sync")
    assert status == 200 and result["pushed"] == before["pending"]
    status, after, _ = call("GET", f"{procedures}/api/sync/status")
    assert after["pending"] == 0 and after["lag_seconds"] == 0 and after["last_sync_at"]
    with psycopg.connect(lab.configs["procedures"]["database"]["dsn"]) as conn:
        row = conn.execute("SELECT COUNT(*) FROM dossiers").fetchone()
        assert row is not None
        total = row[0]
    status, summary, _ = call("GET", f"{portal}/api/provinces/{PROVINCE}/dossier-records/summary")
    assert status == 200 and summary["count"] == total and summary["latest_updated_at"]


def test_background_sync_drains_pending_dossiers(lab: Lab) -> None:
    data = lab.config("procedures", free_port()) | {"sync_interval_seconds": 0.2}
    running = lab.start("procedures-background", data)
    call(
        "POST",
        f"{running.url}/api/dossiers",
        {"commune_code": "19900", "procedure_code": "1.1", "applicant": {}},
    )
    deadline = time.monotonic() + 10
    while (
        call("GET", f"{running.url}/api/sync/status")[1]["pending"] and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert call("GET", f"{running.url}/api/sync/status")[1]["pending"] == 0


def test_citizen_pays_online_through_the_national_portal(lab: Lab) -> None:
    status, paid, _ = call("POST", f"{lab.urls['procedures']}/api/payments/test", {"amount": 50000})
    assert status == 201, paid
    assert paid["status"] == "paid" and paid["amount"] == 50000 and paid["province"] == PROVINCE
    status, again, _ = call(
        "GET", f"{lab.urls['national-portal']}/api/payments/{paid['transaction_id']}"
    )
    assert status == 200 and again["status"] == "paid"
    assert call("POST", f"{lab.urls['procedures']}/api/payments/test", {"amount": -1})[0] == 400


def test_national_portal_notification_file_is_received_and_acknowledged(lab: Lab) -> None:
    portal = lab.urls["national-portal"]
    status, note, _ = call(
        "POST",
        f"{portal}/api/provinces/{PROVINCE}/notifications",
        {
            "subject": "Kết quả giải quyết hồ sơ",
            "content": "Đã giải quyết",
            "commune_code": "19900",
        },
    )
    assert status == 201, note
    assert note["status"] == "acknowledged" and note["attempts"] == 1 and note["acknowledged_at"]
    assert call("GET", f"{portal}/api/notifications/{note['id']}")[1]["status"] == "acknowledged"
    status, received, _ = call("GET", f"{lab.urls['procedures']}/api/notifications")
    assert note["id"] in {n["id"] for n in received["notifications"]}
    status, summary, _ = call("GET", f"{portal}/api/provinces/{PROVINCE}/notifications/summary")
    assert summary["acknowledged"] >= 1 and summary["delivery_failed"] == 0
    redelivered = call("POST", f"{portal}/api/notifications/{note['id']}/deliver")[1]
    assert redelivered["attempts"] == 2 and redelivered["status"] == "acknowledged"
    status, body, _ = call(
        "POST", f"{portal}/api/provinces/atlantis/notifications", {"subject": "x"}
    )
    assert status == 422 and body["error"] == "unknown_province"


def test_official_sends_a_document_through_the_axis_to_another_agency(lab: Lab) -> None:
    documents, axis = lab.urls["documents"], lab.urls["national-docaxis"]
    status, published, _ = call("POST", f"{documents}/api/agencies/publish")
    assert status == 200 and published == {"docaxis_registered": 2, "portal_published": 2}
    codes = call("GET", f"{lab.urls['national-portal']}/api/provinces/{PROVINCE}/agency-codes")[1]
    assert {a["code"] for a in codes["agencies"]} == {AGENCY_A, AGENCY_B}
    assert call("GET", f"{axis}/api/agencies?province={PROVINCE}")[1]["count"] == 2
    status, sent, _ = call(
        "POST",
        f"{documents}/api/documents",
        {
            "from_agency": AGENCY_A,
            "to_agency_code": AGENCY_B,
            "subject": "Công văn số 1/UBND",
            "body": "Nội dung",
        },
    )
    assert status == 201, sent
    assert sent["status"] == "sent" and sent["axis_message_id"]
    status, inbox, _ = call("GET", f"{documents}/api/inbox?agency={AGENCY_B}")
    assert status == 200 and inbox["new"] == 1
    assert inbox["messages"][0]["subject"] == "Công văn số 1/UBND"
    assert inbox["messages"][0]["body_sha256"] == sent["body_sha256"]
    pending = call("GET", f"{axis}/api/messages?agency={AGENCY_B}")[1]["messages"]
    assert all(m["acked_at"] for m in pending)
    assert call("GET", f"{documents}/api/inbox?agency={AGENCY_B}")[1]["new"] == 0
    status, refused, _ = call(
        "POST",
        f"{documents}/api/documents",
        {"to_agency_code": "999.99.99.Z99", "subject": "Gửi nhầm"},
    )
    assert status == 422 and refused["error"] == "axis_refused"
    assert refused["upstream"]["agencies"] == ["999.99.99.Z99"]
    assert "not registered on the Axis" in refused["detail"]  # the Axis's reason, passed on


def test_province_report_is_forwarded_to_national_reporting_through_lgsp(lab: Lab) -> None:
    status, report, _ = call(
        "POST",
        f"{lab.urls['reporting']}/api/reports",
        {"period": "2025-06", "indicators": {"dossiers_received": 1234, "on_time_ratio": 0.97}},
    )
    assert status == 201, report
    assert report["status"] == "forwarded"
    status, national, _ = call(
        "GET", f"{lab.urls['national-reporting']}/api/reports?province={PROVINCE}&period=2025-06"
    )
    assert national["reports"][0]["indicators"]["dossiers_received"] == 1234
    assert national["reports"][0]["source_id"] == report["id"]
    calls = call("GET", f"{lab.urls['lgsp']}/api/calls")[1]
    assert any(r["route"] == "reporting" and r["calls"] >= 1 for r in calls["routes"])
    assert (
        call(
            "POST",
            f"{lab.urls['reporting']}/api/reports",
            {"period": "June", "indicators": {"x": 1}},
        )[0]
        == 400
    )


def test_lgsp_relays_only_configured_routes(lab: Lab) -> None:
    lgsp = lab.urls["lgsp"]
    routes = {r["name"] for r in call("GET", f"{lgsp}/api/routes")[1]["routes"]}
    assert routes == {"portal", "docaxis", "ndxp", "reporting"}
    status, pong, headers = call("GET", f"{lgsp}/gw/ndxp/api/ping")
    assert status == 200 and pong["pong"] is True and headers["X-LGSP-Route"] == "ndxp"
    status, echoed, _ = call("POST", f"{lgsp}/gw/ndxp/api/exchange/population", {"n": 1})
    assert status == 200 and echoed["echo"] == {"n": 1} and echoed["receipt"]["sha256"]
    assert call("GET", f"{lgsp}/gw/evil.example/anything")[1]["error"] == "unknown_route"
    assert call("GET", f"{lgsp}/gw/portal/../_faults")[0] in (400, 404)


def test_commune_joins_an_online_meeting_as_a_bridge(lab: Lab) -> None:
    meetings = lab.urls["meetings"]
    status, meeting, _ = call(
        "POST", f"{meetings}/api/meetings", {"title": "Họp trực tuyến vận hành chính quyền hai cấp"}
    )
    assert status == 201
    status, joined, _ = call(
        "POST", f"{meetings}/api/meetings/{meeting['id']}/join", {"commune_code": "19900"}
    )
    assert status == 201 and joined["participant_id"] and joined["bridge"].endswith("/19900")
    status, again, _ = call(
        "POST", f"{meetings}/api/meetings/{meeting['id']}/join", {"commune_code": "19900"}
    )
    assert status == 200 and again["participant_id"] == joined["participant_id"]
    assert (
        call("POST", f"{meetings}/api/meetings/{meeting['id']}/join", {"commune_code": "99999"})[0]
        == 422
    )
    status, state, _ = call("GET", f"{meetings}/api/meetings/{meeting['id']}")
    assert state["communes_joined"] == 1 and state["communes_total"] == 40


# -- faults ----------------------------------------------------------------------------------
def test_fault_switches_need_the_lab_token(lab: Lab) -> None:
    url = f"{lab.urls['procedures']}/_faults"
    assert call("GET", url)[0] == 401
    assert call("PUT", url, {"mode": "down"}, {"X-Fault-Token": "wrong"})[0] == 401
    status, body, _ = call("GET", url, headers={"X-Fault-Token": FAULT_TOKEN})
    assert status == 200 and body == {"fault": None}
    assert FAULT_TOKEN not in "".join(log.getvalue() for log in lab.logs.values())


@pytest.mark.parametrize("kind", ["procedures", "national-docaxis"])
def test_fault_down_answers_503_everywhere_but_faults(lab: Lab, faults: Any, kind: str) -> None:
    status, body, _ = faults(kind, mode="down")
    assert status == 200 and body["fault"]["mode"] == "down"
    for path in ("/healthz", "/readyz", "/version", "/"):
        assert call("GET", f"{lab.urls[kind]}{path}")[0] == 503
    token = {"X-Fault-Token": FAULT_TOKEN}
    assert call("GET", f"{lab.urls[kind]}/_faults", headers=token)[1]["fault"]["mode"] == "down"
    assert call("DELETE", f"{lab.urls[kind]}/_faults", headers=token)[0] == 200
    assert call("GET", f"{lab.urls[kind]}/healthz")[0] == 200


def test_fault_error_answers_500(lab: Lab, faults: Any) -> None:
    faults("meetings", mode="error")
    status, body, _ = call("GET", f"{lab.urls['meetings']}/healthz")
    assert status == 500 and body["error"] == "fault_error"


def test_fault_slow_delays_answers(lab: Lab, faults: Any) -> None:
    assert faults("documents", mode="slow")[0] == 400  # delay_seconds required
    faults("documents", mode="slow", delay_seconds=0.6)
    started = time.monotonic()
    assert call("GET", f"{lab.urls['documents']}/healthz")[0] == 200
    assert time.monotonic() - started >= 0.6


def test_fault_refuse_commune_refuses_only_that_commune(lab: Lab, faults: Any) -> None:
    procedures, meetings = lab.urls["procedures"], lab.urls["meetings"]
    faults("procedures", mode="refuse_commune", commune="19900")
    faults("meetings", mode="refuse_commune", commune="19900")
    dossier = {"procedure_code": "1.001612", "applicant": {"name": "C"}}
    status, body, _ = call(
        "POST", f"{procedures}/api/dossiers", {**dossier, "commune_code": "19900"}
    )
    assert status == 422 and body["error"] == "commune_refused"
    assert (
        call("POST", f"{procedures}/api/dossiers", {**dossier, "commune_code": "20014"})[0] == 201
    )
    meeting = call("POST", f"{meetings}/api/meetings", {"title": "t"})[1]
    assert (
        call("POST", f"{meetings}/api/meetings/{meeting['id']}/join", {"commune_code": "19900"})[1][
            "error"
        ]
        == "commune_refused"
    )
    call("DELETE", f"{procedures}/_faults", headers={"X-Fault-Token": FAULT_TOKEN})
    assert (
        call("POST", f"{procedures}/api/dossiers", {**dossier, "commune_code": "19900"})[0] == 201
    )


def test_notification_to_a_down_procedures_system_is_recorded_as_failed(
    lab: Lab, faults: Any
) -> None:
    portal = lab.urls["national-portal"]
    faults("procedures", mode="down")
    status, note, _ = call(
        "POST", f"{portal}/api/provinces/{PROVINCE}/notifications", {"subject": "Thông báo"}
    )
    assert status == 201 and note["status"] == "delivery_failed" and "503" in note["last_error"]
    call("DELETE", f"{lab.urls['procedures']}/_faults", headers={"X-Fault-Token": FAULT_TOKEN})
    again = call("POST", f"{portal}/api/notifications/{note['id']}/deliver")[1]
    assert again["status"] == "acknowledged" and again["attempts"] == 2


def test_a_failed_notification_is_delivered_again_before_the_next_one(
    lab: Lab, faults: Any
) -> None:
    """The portal's retry queue: a delivery that failed while the province's system was down
    does not stay failed once the system is back (the rehearsal's check reads the summary)."""
    portal = lab.urls["national-portal"]
    summary = f"{portal}/api/provinces/{PROVINCE}/notifications/summary"
    faults("procedures", mode="down")
    failed = call("POST", f"{portal}/api/provinces/{PROVINCE}/notifications", {"subject": "a"})[1]
    assert failed["status"] == "delivery_failed"
    assert call("GET", summary)[1]["delivery_failed"] >= 1
    call("DELETE", f"{lab.urls['procedures']}/_faults", headers={"X-Fault-Token": FAULT_TOKEN})
    later = call("POST", f"{portal}/api/provinces/{PROVINCE}/notifications", {"subject": "b"})[1]
    assert later["status"] == "acknowledged"
    first = call("GET", f"{portal}/api/notifications/{failed['id']}")[1]
    assert first["status"] == "acknowledged" and first["attempts"] == 2
    assert call("GET", summary)[1]["delivery_failed"] == 0


# -- restarts and outages --------------------------------------------------------------------
def test_restart_on_the_same_database_loses_nothing(lab: Lab) -> None:
    port = free_port()
    data = lab.config("procedures", port)
    first = lab.start("procedures-restart", data)
    url = first.url
    ids = [
        call(
            "POST",
            f"{url}/api/dossiers",
            {"commune_code": c, "procedure_code": "1.1", "applicant": {}},
        )[1]["id"]
        for c in ("19900", "20014", "19930")
    ]
    call("POST", f"{url}/api/sync")
    call(
        "PUT",
        f"{url}/_faults",
        {"mode": "refuse_commune", "commune": "19900"},
        {"X-Fault-Token": FAULT_TOKEN},
    )
    first.stop()
    second = lab.start("procedures-restart", data)
    assert second.url == url
    for dossier_id in ids:
        status, dossier, _ = call("GET", f"{url}/api/dossiers/{dossier_id}")
        assert status == 200 and dossier["synced_at"]
    assert call("GET", f"{url}/api/sync/status")[1]["pending"] == 0
    fault = call("GET", f"{url}/_faults", headers={"X-Fault-Token": FAULT_TOKEN})[1]["fault"]
    assert fault["mode"] == "refuse_commune" and fault["commune"] == "19900"

    # the database goes away: readiness says so, liveness does not
    dbname = data["database"]["dsn"].rsplit("/", 1)[1]
    with psycopg.connect(lab.pg.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
    time.sleep(1.1)  # past the fault cache
    status, ready, _ = call("GET", f"{url}/readyz")
    assert status == 503 and ready["status"] == "not_ready"
    assert call("GET", f"{url}/healthz")[0] == 200
    assert call("GET", f"{url}/api/dossiers/{ids[0]}")[1]["error"] == "database_unavailable"


def test_national_counterpart_restart_keeps_its_sqlite_state(lab: Lab) -> None:
    port = free_port()
    data = lab.config("national-docaxis", port)
    first = lab.start("docaxis-restart", data)
    assert call("PUT", f"{first.url}/api/agencies/{AGENCY_A}", {"province": PROVINCE})[0] == 201
    first.stop()
    second = lab.start("docaxis-restart", data)
    assert call("GET", f"{second.url}/api/agencies/{AGENCY_A}")[1]["province"] == PROVINCE
