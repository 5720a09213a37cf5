"""The read API (progress) and the national readiness report: dispatch table, commune
coverage, late and at-risk steps; text, JSON and a self-contained HTML page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govops.runbook.report import render_report
from govops.runbook.state import Store, open_store
from tests.fixtures.runbook import (
    isolated_cache,
    runbook_doc,
    small_environment,
    start,
    step,
    write_runbook,
)

__all__ = ["isolated_cache"]
T0 = datetime(2025, 6, 25, 1, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(str(tmp_path / "state.sqlite3"))


def test_late_and_at_risk(tmp_path: Path, store: Store) -> None:
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step("a", deadline="T0+1h", expected="30m"),
                    step("b", deadline="T0+2h", expected="2h"),
                ],
            )
        ]
    )
    run, _ = start(
        store, write_runbook(tmp_path / "rb.yml", doc), small_environment(("hue",)), t0=T0
    )
    early = store.progress(run.id, now=T0 + timedelta(minutes=10))
    flags = {s.step_id: (s.late, s.at_risk) for s in early.steps}
    # b: 30m of a plus 2h of b ahead, only 1h50m left → at risk already.
    assert flags == {"a": (False, False), "b": (False, True)}
    later = store.progress(run.id, now=T0 + timedelta(minutes=70))
    assert {s.step_id: (s.late, s.at_risk) for s in later.steps} == {
        "a": (True, False),
        "b": (False, True),
    }
    assert later.late[0].owner == "ops team of {{ name }}"  # the clears' people, as written
    assert later.steps[0].deadline == T0 + timedelta(hours=1)


def _national_like(tmp_path: Path) -> Path:
    fail_in_hue = {"executor": "noop", "with": {"fail": "{{ province == 'hue' }}"}}
    doc = runbook_doc(
        [
            ("adjust", [step("declare", readiness_check="admin_units_declared")]),
            (
                "trial",
                [
                    step(
                        "dossiers", foreach="commune", readiness_check="dossier_submission_tested"
                    ),
                    step("sso", action=fail_in_hue, readiness_check="sso_tested"),
                ],
            ),
        ],
        waves={"batch_size": 3, "max_concurrency": 3, "max_errors": 1},
    )
    return write_runbook(tmp_path / "rb.yml", doc)


def test_readiness_and_coverage_after_a_rollback(tmp_path: Path, store: Store) -> None:
    env = small_environment(("tuyen_quang", "hue", "ho_chi_minh"), communes=4)
    run, engine = start(store, _national_like(tmp_path), env)
    assert engine.execute() == "completed_with_failures"
    p = store.progress(run.id)
    checks = {r.check_id: r for r in p.readiness}
    # Huế rolled back, but its declaration has nothing to undo (noop rollback): it stands.
    assert (checks["admin_units_declared"].done, checks["admin_units_declared"].total) == (3, 3)
    assert checks["sso_tested"].provinces_done == ("tuyen_quang", "ho_chi_minh")
    assert checks["dossier_submission_tested"].dispatch_done == 8
    assert not checks["payment_tested"].in_runbook
    # Huế's dossiers were rolled back, but each commune was tested once: coverage counts it.
    assert {(c.province, c.tested, c.total) for c in p.communes} == {
        ("tuyen_quang", 4, 4),
        ("hue", 4, 4),
        ("ho_chi_minh", 4, 4),
    }
    by = {x.province: x for x in p.provinces}
    assert by["hue"].status == "rolled_back" and by["hue"].failed_step == "sso"
    assert by["tuyen_quang"].steps_done == 3 == by["tuyen_quang"].steps_total


def test_report_formats(tmp_path: Path, store: Store) -> None:
    env = small_environment(("tuyen_quang", "hue", "ho_chi_minh"), communes=2)
    run, engine = start(store, _national_like(tmp_path), env)
    engine.execute()
    progress = store.progress(run.id)
    text = render_report(progress, "text")
    line = next(x for x in text.splitlines() if "Single sign-on" in x)
    assert re.search(r"2/3\s+33/34$", line), line  # this run beside the dispatch's 28 June
    assert "Commune coverage: 6/6 communes tested at least once" in text
    assert re.search(r"hue\s+0\s+rolled_back", text)
    assert "Commune-level identification codes" in text and "not run" in text
    data = json.loads(render_report(progress, "json"))
    assert data["run"]["id"] == run.id and "runbook_text" not in data["run"]
    assert {r["check_id"]: r["done"] for r in data["readiness"]}["sso_tested"] == 2
    html = render_report(progress, "html")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert not re.search(r"<(script|link|img)\b", html)  # one page, no external assets
    assert "33/34" in html and "Thành phố Huế" in html


def test_html_escapes_what_it_shows(tmp_path: Path, store: Store) -> None:
    bad = {"executor": "noop", "with": {"fail": True, "message": "<script>alert(1)</script>"}}
    doc = runbook_doc([("one", [step("a", action=bad)])])
    run, engine = start(store, write_runbook(tmp_path / "rb.yml", doc), small_environment(("hue",)))
    engine.execute()
    html = render_report(store.progress(run.id), "html")
    assert "<script>" not in html and "&lt;script&gt;" in html
