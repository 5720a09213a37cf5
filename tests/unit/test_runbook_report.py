"""The read API (progress) and the national readiness report: dispatch table, commune
coverage, late and at-risk steps; text, JSON and a self-contained HTML page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govops.runbook.evidence import (
    CheckEvidence,
    Evidence,
    EvidenceUnavailable,
    compare,
    expand,
    gather,
    prometheus_query,
)
from govops.runbook.executors.base import RunSettings
from govops.runbook.executors.transport import opener
from govops.runbook.report import observe, render_report, strict_exit
from govops.runbook.state import Store, open_store
from govops.runbook.timeutil import clock, shown
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
    # the steps' count, then the evidence (none asked), then the dispatch's 28 June figure
    assert re.search(r"2/3\s+unavailable\s+33/34$", line), line
    assert "evidence unavailable: not asked" in text
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


def test_evidence_beside_the_steps_and_disagreements_per_province(
    tmp_path: Path, store: Store
) -> None:
    env = small_environment(("tuyen_quang", "hue", "ho_chi_minh"), communes=2)
    run, engine = start(store, _national_like(tmp_path), env)
    engine.execute()  # sso reported done in tuyen_quang and ho_chi_minh, not in hue
    progress = store.progress(run.id)
    asked: list[str] = []

    def prometheus(expr: str) -> list[tuple[dict[str, str], float]]:
        asked.append(expr)
        if "sso_login" in expr:  # the prober saw SSO work in hue and tuyen_quang only
            return [({"province": "hue"}, 1.0), ({"province": "tuyen_quang"}, 1.0)]
        if "dossier_submit" in expr:  # declared units: observed everywhere, one series NaN
            return [({"province": p}, 1.0) for p in run.provinces] + [({"province": "x"}, 0.0)]
        return [({"province": "hue"}, 0.0)]

    start_s = run.created_at
    evidence = gather(run.provinces, prometheus, start_s, start_s + 60, "http://prom")
    assert evidence.available
    assert asked and all("$" not in q for q in asked) and "[300s]" in asked[0]
    assert evidence.checks["sso_tested"].observed == ("tuyen_quang", "hue")
    assert not evidence.checks["signing_certificates_issued"].defined
    found = {
        (d.check_id, d.province, d.reported, d.observed)
        for d in compare(progress.readiness, evidence, run.provinces)
    }
    assert found == {
        ("sso_tested", "hue", False, True),
        ("sso_tested", "ho_chi_minh", True, False),
        # every commune tested by the steps, no commune timestamp observed
        ("dossier_submission_tested", "tuyen_quang", True, False),
        ("dossier_submission_tested", "hue", True, False),
        ("dossier_submission_tested", "ho_chi_minh", True, False),
    }
    text = render_report(progress, "text", evidence)
    line = next(x for x in text.splitlines() if "Single sign-on" in x)
    assert re.search(r"2/3\s+2/3\s+33/34$", line), line
    assert "Steps and evidence disagree: 5" in text
    assert re.search(r"ho_chi_minh\s+sso_tested\s+the steps reported it done; not observed", text)
    assert re.search(r"hue\s+sso_tested\s+observed done; the steps did not report it", text)
    assert "no evidence" in text  # a check without an evidence query says so
    html = render_report(progress, "html", evidence)
    assert "Steps and evidence disagree" in html and "observed done; the steps" in html
    data = json.loads(render_report(progress, "json", evidence))
    assert len(data["evidence"]["disagreements"]) == 5
    assert strict_exit(progress, evidence) == 1


def test_agreement_and_a_failing_query() -> None:
    checks = {"sso_tested": CheckEvidence("sso_tested", "q", ("hue",))}
    evidence = Evidence(True, "", "http://prom", checks)

    class R:  # the part of ReadinessProgress compare reads
        check_id, in_runbook, provinces_done = "sso_tested", True, ("hue",)

    assert compare([R()], evidence, ["hue", "hanoi"]) == []  # type: ignore[list-item]
    failing = Evidence(True, "", "", {"sso_tested": CheckEvidence("sso_tested", "q", (), "500")})
    assert compare([R()], failing, ["hue"]) == []  # type: ignore[list-item]
    assert expand("x[$window] >= $start", 1000.0, 5000.4) == "x[4001s] >= 1000"


def test_prometheus_unreachable_is_evidence_unavailable(tmp_path: Path, store: Store) -> None:
    env = small_environment(("hue",), communes=1)
    run, engine = start(store, _national_like(tmp_path), env)
    engine.execute()
    progress = store.progress(run.id)
    settings = RunSettings(env="lab", root=tmp_path, log_dir=tmp_path, inventory=tmp_path)
    query = prometheus_query("http://127.0.0.1:9", opener(settings))  # port 9: nothing listens
    with pytest.raises(EvidenceUnavailable, match="unreachable"):
        query("up")
    evidence = gather(run.provinces, query, run.created_at, run.created_at + 10, "x")
    assert not evidence.available and "unreachable" in evidence.reason
    assert observe(progress, "http://127.0.0.1:9").available is False
    text = render_report(progress, "text", evidence)
    assert "evidence unavailable: Prometheus at http://127.0.0.1:9 unreachable" in text
    assert strict_exit(progress, evidence) == 3


def test_times_a_person_reads_are_vietnams() -> None:
    moment = datetime(2025, 6, 28, 6, 0, tzinfo=UTC)
    assert shown(moment) == "2025-06-28 13:00:00 +07:00"
    assert re.fullmatch(r"\d\d:\d\d:\d\d", clock())
    assert clock(moment) == "13:00:00"


def test_report_renders_owners_and_shows_vietnams_time(tmp_path: Path, store: Store) -> None:
    doc = runbook_doc([("one", [step("a", deadline="T0+1h", expected="30m")])])
    run, _ = start(
        store, write_runbook(tmp_path / "rb.yml", doc), small_environment(("hue",)), t0=T0
    )
    progress = store.progress(run.id, now=T0 + timedelta(hours=2))
    text = render_report(progress, "text")
    assert "{{" not in text and "owner: ops team of Thành phố Huế" in text
    assert "due 2025-06-25 09:00:00 +07:00" in text  # T0+1h = 02:00 UTC
    assert "T0 2025-06-25 08:00:00 +07:00" in text
    html = render_report(progress, "html")
    assert "{{" not in html and "ops team of Thành phố Huế" in html
    assert "2025-06-25 09:00:00 +07:00" in html
    data = json.loads(render_report(progress, "json"))
    assert data["steps"][0]["deadline"] == "2025-06-25T02:00:00+00:00"  # machines: ISO UTC
