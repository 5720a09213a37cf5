"""Operations through adapters against real stand-ins (issue 14, items 3 and 4): the lab
rehearsal's operation steps pass through the `operation` executor with the estate naming
adapters, and the prober withdraws every synthetic dossier, report and document it creates,
while real ones cannot be withdrawn."""

from __future__ import annotations

import json
import shutil
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporters.govops_prober.from_estate import config_from_estate
from exporters.govops_prober.prober import Prober
from exporters.govops_prober.server import Exporter
from govops.adapters import standin_adapter_path
from govops.registry import load_estate, provinces
from govops.render.common import agencies
from govops.runbook.context import load_environment, province_vars
from govops.runbook.executors import ExecContext, RunSettings, executor
from govops.runbook.executors.operation import OperationArgs
from govops.runbook.loader import load_runbook
from govops.runbook.templating import render_value
from tests.integration.standin_estate import StandinEstate, start_estate

ROOT = Path(__file__).resolve().parents[2]
PROVINCE = "cao_bang"  # 56 communes


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("standins")


@pytest.fixture(scope="module")
def standins(stores: Path) -> Iterator[StandinEstate]:
    running = start_estate([PROVINCE], stores)
    yield running
    running.close()


def _dossiers(stores: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(stores / f"{PROVINCE}-procedures.sqlite") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT id, applicant FROM dossiers").fetchall()
    return [{"id": r["id"], "applicant": json.loads(r["applicant"])} for r in rows]


def _ids(store: Path, table: str) -> list[str]:
    with sqlite3.connect(store) as db:
        return [r[0] for r in db.execute(f"SELECT id FROM {table}")]


def _column(store: Path, table: str, column: str) -> list[str]:
    with sqlite3.connect(store) as db:
        return [r[0] for r in db.execute(f"SELECT {column} FROM {table}")]


def _http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_a_prober_sweep_leaves_no_synthetic_record_and_real_ones_stay(
    standins: StandinEstate, stores: Path, tmp_path: Path
) -> None:
    procedures = standins.url(f"{PROVINCE}/procedures")
    status, real = _http(
        "POST",
        f"{procedures}/api/dossiers",
        {"commune_code": _first_commune(), "procedure_code": "1.001", "applicant": {"name": "A"}},
    )
    assert status == 201
    config = config_from_estate(
        load_estate(ROOT / "inventories/lab/estate.yml"),
        endpoints=standins.endpoints,
        commune_period_seconds=60.0,  # every commune in this one sweep
        scrape_interval_seconds=60.0,
        state_dir=str(tmp_path / "state"),
    )
    reporting = standins.url(f"{PROVINCE}/reporting")
    status, real_report = _http(
        "POST", f"{reporting}/api/reports", {"period": "2025-07", "indicators": {"received": 3}}
    )
    assert status == 201
    documents = standins.url(f"{PROVINCE}/documents")
    codes = [a["code"] for a in agencies(provinces()[PROVINCE])]
    status, real_document = _http(
        "POST",
        f"{documents}/api/documents",
        {"from_agency": codes[1], "to_agency_code": codes[0], "subject": "Công văn 12/UBND"},
    )
    assert status == 201
    prober = Prober(config)
    text = ""
    try:
        for module in ("dossier_submit", "report_submit", "axis_roundtrip"):
            code, _, body = Exporter(prober).probe({"target": [PROVINCE], "module": [module]}, "20")
            assert code == 200
            text += body.decode()
    finally:
        prober.close()
    assert 'check="dossier_submit",province="cao_bang",system="procedures"} 1.0' in text, text
    assert 'check="report_submit",province="cao_bang",system="reporting"} 1.0' in text, text
    assert 'check="axis_roundtrip",province="cao_bang",system="documents"} 1.0' in text, text
    # Documents: only the real one, on the Axis and sent; no synthetic copy in an inbox.
    store = stores / f"{PROVINCE}-documents.sqlite"
    assert _ids(store, "documents") == [real_document["id"]]
    axis = _column(stores / "national-docaxis.sqlite", "axis_messages", "subject")
    assert axis == ["Công văn 12/UBND"]
    assert not [s for s in _column(store, "inbox", "subject") if s.startswith("govops synthetic")]
    status, answer = _http("DELETE", f"{documents}/api/documents/{real_document['id']}")
    assert (status, answer["error"]) == (409, "not_synthetic")
    assert _ids(store, "documents") == [real_document["id"]]
    # Reports: only the real one remains, here and at national reporting.
    assert _ids(stores / f"{PROVINCE}-reporting.sqlite", "reports") == [real_report["id"]]
    national = _ids(stores / "national-reporting.sqlite", "national_reports")
    assert national == [real_report["national_id"]]
    status, answer = _http("DELETE", f"{reporting}/api/reports/{real_report['id']}")
    assert (status, answer["error"]) == (409, "not_synthetic")
    assert _ids(stores / f"{PROVINCE}-reporting.sqlite", "reports") == [real_report["id"]]
    left = _dossiers(stores)
    assert [d for d in left if d["applicant"].get("synthetic")] == []
    assert [d["id"] for d in left] == [real["id"]]
    # The withdraw operation, as the prober's adapter makes it, refuses the real dossier.
    method, url, _ = config.operations["systems.procedures"]["withdraw"].request(
        procedures, {"kind": "dossier", "id": real["id"]}
    )
    status, answer = _http(method, url)
    assert (status, answer["error"]) == (409, "not_synthetic")
    assert [d["id"] for d in _dossiers(stores)] == [real["id"]]


def _first_commune() -> str:
    return provinces()[PROVINCE].communes[0].code_str


def _estate_with_adapters(tmp: Path, standins: StandinEstate) -> Path:
    """The lab estate, each system and counterpart naming a copy of the stand-in adapter
    whose base is the stand-in's loopback URL (as a vendor's adapter names its host)."""
    folder = tmp / "inventories" / "lab"
    shutil.copytree(ROOT / "inventories" / "lab", folder)
    data = yaml.safe_load((folder / "estate.yml").read_text(encoding="utf-8"))
    urls = standins.endpoints
    for kind in ("systems", "counterparts"):
        for name, entry in data[kind].items():
            adapter = yaml.safe_load(standin_adapter_path(kind, name).read_text("utf-8"))
            base = urls["systems"][PROVINCE][name] if kind == "systems" else urls[kind][name]
            adapter["base"] = base
            file = f"{kind}-{name}.yml"
            (folder / file).write_text(yaml.safe_dump(adapter), encoding="utf-8")
            entry["adapter"] = file
    (folder / "estate.yml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return folder


def test_the_rehearsals_operations_pass_against_the_standins(
    standins: StandinEstate, tmp_path: Path
) -> None:
    inventory = _estate_with_adapters(tmp_path, standins)
    runbook = load_runbook(ROOT / "runbooks/rehearsal.yml", ROOT).runbook
    env = load_environment("lab", ROOT, inventory.parent)
    info = env.provinces[PROVINCE]
    settings = RunSettings(env="lab", root=ROOT, log_dir=tmp_path, inventory=inventory)
    ran: list[str] = []
    for _, step in runbook.steps():
        context = province_vars(env, info, "t", "", runbook.vars)
        context |= {"idempotency_key": f"t/{step.id}", "commune": info.communes[0].as_dict()}
        for role in ("action", "verify"):
            action = getattr(step, role)
            if action.executor != "operation":
                continue
            args = OperationArgs.model_validate(render_value(action.args, context))
            ctx = ExecContext(
                run_id="t",
                province=PROVINCE,
                step_id=step.id,
                role=role,
                idempotency_key=f"t/{step.id}",
                attempt=1,
                timeout=30.0,
                settings=settings,
            )
            outcome = executor("operation").run(args, ctx)
            assert outcome.ok, f"{step.id}.{role}: {outcome.message}"
            assert str(standins.ports["national-portal"]) in outcome.data["url"] or (
                str(standins.ports[f"{PROVINCE}/{args.system}"]) in outcome.data["url"]
                if args.system
                else str(standins.ports[_national(args.counterpart)]) in outcome.data["url"]
            )
            ran.append(f"{step.id}.{role}")
    assert len(ran) >= 20, ran


def _national(counterpart: str | None) -> str:
    return {"docaxis": "national-docaxis", "ndxp": "national-ndxp"}.get(
        counterpart or "", "national-portal"
    )
