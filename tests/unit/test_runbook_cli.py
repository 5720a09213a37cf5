"""`govops cutover …`: exit codes, messages naming file/line/key, no tracebacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from govops.cli import main
from govops.runbook.state import open_store
from tests.fixtures.runbook import ROOT, isolated_cache, runbook_doc, step, write_runbook

__all__ = ["isolated_cache"]


def cutover(*args: str) -> Result:
    return CliRunner().invoke(main, ["cutover", *args], catch_exceptions=False)


@pytest.fixture
def state(tmp_path: Path) -> str:
    return str(tmp_path / "state.sqlite3")


def _run_id(result: Result) -> str:
    match = re.search(r"run (\S+) \(", result.output)
    assert match, result.output
    return match.group(1)


def test_lint_exit_codes(tmp_path: Path) -> None:
    result = cutover("lint", *(str(p) for p in sorted((ROOT / "runbooks").glob("*.yml"))))
    assert result.exit_code == 0, result.output
    # The step count grows as steps are added; the phases are the national sequence's six.
    assert "ok" in result.output and re.search(r"cutover\.yml: 6 phases, \d+ steps", result.output)
    bad = runbook_doc([("one", [step("a")])])
    del bad["phases"][0]["steps"][0]["clears"]["authority"]
    path = write_runbook(tmp_path / "bad.yml", bad)
    result = cutover("lint", str(path))
    assert result.exit_code == 2
    assert re.search(
        r"bad\.yml:\d+: phases\[0\]\.steps\[0\]\.clears\.authority: expected a value", result.output
    )
    assert "Traceback" not in result.output


def test_lint_strict_fails_on_warnings(tmp_path: Path) -> None:
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step(
                        "a",
                        action={"executor": "ansible", "with": {"playbook": "playbooks/nope.yml"}},
                    )
                ],
            )
        ]
    )
    path = write_runbook(tmp_path / "rb.yml", doc)
    assert cutover("lint", str(path)).exit_code == 0
    assert cutover("lint", "--strict", str(path)).exit_code == 2


def test_dry_run_prints_the_six_clears_per_province() -> None:
    result = cutover(
        "run",
        str(ROOT / "runbooks/cutover.yml"),
        "--env",
        "production",
        "--provinces",
        "hue,ho_chi_minh",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "pilot: hue" in out and "wave 1: ho_chi_minh" in out
    assert "deadline 2025-06-26 17:00:00 +07:00" in out  # Vietnam's time, for a person
    assert "--limit province_hue" in out and "province_<province>" not in out
    for clear in ("people:", "work:", "responsibility:", "product:", "authority:"):
        assert clear in out
    assert "× 168 communes" in out and "× 40 communes" in out
    assert "operation napd.declare_admin_units province=ho_chi_minh province_name=" in out
    plan = json.loads(
        cutover(
            "run",
            str(ROOT / "runbooks/rehearsal.yml"),
            "--env",
            "lab",
            "--dry-run",
            "--json",
            "--t0",
            "2025-06-25T08:00:00+07:00",
        ).stdout
    )
    assert {s["province"] for s in plan["steps"]} == {"tuyen_quang", "hue", "ho_chi_minh"}
    first = plan["steps"][0]
    assert first["deadline"] == "2025-06-25T08:03:00+07:00"  # T0+3m
    assert set(first["clears"]) == {"people", "work", "responsibility", "product", "authority"}


def test_run_status_report(tmp_path: Path, state: str) -> None:
    path = write_runbook(tmp_path / "rb.yml", runbook_doc([("one", [step("a"), step("b")])]))
    result = cutover("run", str(path), "--provinces", "hue,tuyen_quang", "--state", state)
    assert result.exit_code == 0, result.output
    run_id = _run_id(result)
    assert "completed" in result.output
    assert "hue b done" in result.output  # plain lines when not on a terminal
    listed = cutover("status", "--state", state, "--json")
    assert json.loads(listed.output)[0]["id"] == run_id
    one = cutover("status", run_id, "--state", state)
    assert one.exit_code == 0 and "tuyen_quang" in one.output
    html = tmp_path / "report.html"
    assert (
        cutover("report", run_id, "--format", "html", "-o", str(html), "--state", state).exit_code
        == 0
    )
    assert "<!DOCTYPE html>" in html.read_text(encoding="utf-8")
    text = cutover("report", run_id, "--state", state)
    assert "National readiness" in text.output
    assert cutover("resume", run_id, "--state", state).exit_code == 1  # completed: nothing to do


def test_failed_province_exits_1(tmp_path: Path, state: str) -> None:
    fail = {"executor": "noop", "with": {"fail": "{{ province == 'hue' }}"}}
    path = write_runbook(tmp_path / "rb.yml", runbook_doc([("one", [step("a", action=fail)])]))
    result = cutover("run", str(path), "--provinces", "hue,tuyen_quang", "--state", state)
    assert result.exit_code == 1
    assert "completed_with_failures" in result.output


def test_no_wait_exits_3_then_approve_and_resume(tmp_path: Path, state: str) -> None:
    gate = {"executor": "manual", "with": {"instructions": "go?"}}
    doc = runbook_doc([("one", [step("gate", action=gate, verify=gate)])])
    path = write_runbook(tmp_path / "rb.yml", doc)
    result = cutover("run", str(path), "--provinces", "hue", "--state", state, "--no-wait")
    assert result.exit_code == 3, result.output
    run_id = _run_id(result)
    assert cutover("approve", run_id, "gate", "--as", "chair", "--state", state).exit_code == 0
    assert cutover("resume", run_id, "--state", state).exit_code == 0


def test_bad_input_exits_2(tmp_path: Path, state: str) -> None:
    path = write_runbook(tmp_path / "rb.yml", runbook_doc([("one", [step("a")])]))
    unknown = cutover("run", str(path), "--provinces", "atlantis", "--state", state)
    assert unknown.exit_code == 2 and "--provinces" in unknown.output
    assert "atlantis" in unknown.output
    var = cutover("run", str(path), "--var", "nope=1", "--state", state)
    assert var.exit_code == 2 and "--var" in var.output
    gate = {"executor": "promql", "with": {"query": "up"}}
    needs = write_runbook(tmp_path / "gate.yml", runbook_doc([("one", [step("g", action=gate)])]))
    result = cutover("run", str(needs), "--state", state)
    assert result.exit_code == 2 and "prometheus_url" in result.output
    assert cutover("abort", "no-such-run", "--state", state).exit_code == 2
    assert cutover("report", "no-such-run", "--state", state).exit_code == 2
    assert cutover("approve", "x", "y", "--as", "z", "--state", state).exit_code == 2
    missing = cutover("run", str(tmp_path / "none.yml"), "--state", state)
    assert missing.exit_code == 2 and "expected an existing file" in missing.output


def test_rich_progress_on_a_terminal_and_plain_lines_otherwise() -> None:
    import io

    from rich.console import Console

    from govops.runbook.display import Display
    from govops.runbook.engine import Event

    events = [
        Event("wave", message="one: pilot (hue)"),
        Event("province", "hue", status="running"),
        Event("step", "hue", "a", status="running"),
        Event("step", "hue", "a", status="done", seconds=0.2),
        Event("step", "hue", "b", status="failed", message="boom"),
        Event("rollback", "hue", status="rolled_back"),
        Event("notice", message="abort requested"),
        Event("end", status="completed_with_failures"),
    ]
    tty = io.StringIO()
    with Display(Console(file=tty, force_terminal=True, width=100), ["hue"], 2) as display:
        for e in events:
            display(e)
    assert "hue" in tty.getvalue() and "boom" in tty.getvalue()
    plain = io.StringIO()
    with Display(Console(file=plain, force_terminal=False, width=100), ["hue"], 2) as display:
        for e in events:
            display(e)
    lines = plain.getvalue().splitlines()
    assert any(line.endswith("hue a done (0.2s)") for line in lines)
    assert any(line.endswith("hue b failed: boom") for line in lines)
    assert not any("running" in line and " a " in line for line in lines)


def test_approve_as_runs_unattended(tmp_path: Path, state: str) -> None:
    """`--approve-as NAME`: every manual step approved up front (audited), no wait, exit 0."""
    gate = {"executor": "manual", "with": {"instructions": "go?"}}
    doc = runbook_doc([("one", [step("a"), step("gate", action=gate, verify=gate)])])
    path = write_runbook(tmp_path / "rb.yml", doc)
    result = cutover(
        "run", str(path), "--provinces", "hue,tuyen_quang", "--state", state,
        "--no-wait", "--approve-as", "rehearsal operator",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "approved up front as rehearsal operator: gate" in result.output
    from govops.runbook.state import open_store

    with open_store(state) as store:
        run_id = store.runs(1)[0].id
        approvals = [e for e in store.audit(run_id) if e.action == "approval"]
    assert [(e.actor, e.step_id, e.province) for e in approvals] == [
        ("rehearsal operator", "gate", "")
    ]
    limited = {"executor": "manual", "with": {"instructions": "go?", "approvers": ["chair"]}}
    doc = runbook_doc([("one", [step("gate", action=limited, verify=limited)])])
    path = write_runbook(tmp_path / "limited.yml", doc)
    refused = cutover("run", str(path), "--state", state, "--approve-as", "someone")
    assert refused.exit_code == 2 and "--approve-as" in refused.output


def test_inventories_elsewhere_are_recorded_for_resume(tmp_path: Path, state: str) -> None:
    """`--inventories DIR`: the estate (and inventory) of a throwaway environment; resume and
    the run's settings use the same folder."""
    import shutil

    inventories = tmp_path / "inventories"
    shutil.copytree(ROOT / "inventories/lab", inventories / "lab")
    estate = (inventories / "lab/estate.yml").read_text(encoding="utf-8")
    assert "environment: lab" in estate
    (inventories / "lab/estate.yml").write_text(
        estate.replace("environment: lab", "environment: elsewhere"), encoding="utf-8"
    )
    (inventories / "lab").rename(inventories / "elsewhere")
    gate = {"executor": "manual", "with": {"instructions": "go?"}}
    doc = runbook_doc([("one", [step("a"), step("gate", action=gate, verify=gate)])])
    path = write_runbook(tmp_path / "rb.yml", doc)
    unknown = cutover("run", str(path), "--env", "elsewhere", "--state", state)
    assert unknown.exit_code == 2, unknown.output  # not in the checkout's inventories/
    result = cutover(
        "run", str(path), "--env", "elsewhere", "--inventories", str(inventories),
        "--provinces", "hue", "--state", state, "--no-wait",
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    run_id = _run_id(result)
    from govops.runbook.state import open_store

    with open_store(state) as store:
        run = store.run(run_id)
    assert run.env == "elsewhere"
    assert run.options["inventories"] == str(inventories)
    assert run.settings["inventory"] == str(inventories / "elsewhere")
    assert cutover("approve", run_id, "gate", "--as", "chair", "--state", state).exit_code == 0
    assert cutover("resume", run_id, "--state", state).exit_code == 0


def test_halted_run_summary_shows_provinces_stopped_between_phases(
    tmp_path: Path, state: str
) -> None:
    fail = {"executor": "noop", "with": {"fail": "{{ province == 'hue' }}"}}
    doc = runbook_doc(
        [("one", [step("a", action=fail)]), ("two", [step("b")])],
        waves={"batch_size": 2, "max_concurrency": 2, "max_errors": 0},
    )
    path = write_runbook(tmp_path / "rb.yml", doc)
    result = cutover("run", str(path), "--provinces", "hue,tuyen_quang", "--state", state)
    assert result.exit_code == 1, result.output
    summary = " ".join(result.output.split()).rpartition("end: halted")[2]
    # tuyen_quang did phase one, then the run halted before phase two: not "running".
    assert ": halted" in summary and "1 stopped" in summary and "running" not in summary, summary


def test_the_printed_report_hint_works_as_printed(tmp_path: Path, state: str) -> None:
    path = write_runbook(tmp_path / "rb.yml", runbook_doc([("one", [step("a")])]))
    result = cutover("run", str(path), "--provinces", "hue", "--state", state)
    assert result.exit_code == 0, result.output
    hint = re.search(r"Report: govops (cutover report .+)$", result.output, re.MULTILINE)
    assert hint, result.output
    assert f"--state {state}" in hint.group(1)
    report = cutover(*hint.group(1).split()[1:])
    assert report.exit_code == 0, report.output
    assert "National readiness" in report.output
    # In the default store the hint needs no --state.
    result = cutover("run", str(path), "--provinces", "hue")
    assert result.exit_code == 0, result.output
    assert re.search(r"Report: govops cutover report \S+\s*$", result.output, re.MULTILINE)


def test_status_without_options_finds_the_labs_rehearsal(
    tmp_path: Path, isolated_cache: Path
) -> None:
    path = write_runbook(tmp_path / "rb.yml", runbook_doc([("one", [step("a")])]))
    lab_store = isolated_cache / "lab" / "lab" / "rehearsal.sqlite3"
    lab_store.parent.mkdir(parents=True)
    ran = cutover("run", str(path), "--provinces", "hue", "--state", str(lab_store))
    run_id = _run_id(ran)
    # No store at the default place: the lab's one is read, and said so.
    listed = cutover("status")
    assert listed.exit_code == 0, listed.output
    assert run_id in listed.output and "reading the lab's" in listed.output
    # Two lab environments: each named, with the exact command.
    other = isolated_cache / "lab" / "t1" / "rehearsal.sqlite3"
    other.parent.mkdir(parents=True)
    cutover("run", str(path), "--provinces", "hue", "--state", str(other))
    listed = cutover("status")
    assert listed.exit_code == 2
    assert f"govops cutover status --state {lab_store}" in listed.output
    assert f"govops cutover status --state {other}" in listed.output
    # A default store with no run: the table is empty, and the hint says where the runs are.
    with open_store(None):
        pass  # created, as a first `cutover run` would
    listed = cutover("status")
    assert listed.exit_code == 0, listed.output
    assert run_id not in listed.output.split("the lab's rehearsals")[0]
    assert f"no runs in {isolated_cache / 'runbook' / 'state.sqlite3'}" in listed.output
    assert f"govops cutover status --state {lab_store}" in listed.output
