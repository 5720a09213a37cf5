"""The linter: every problem named by file, LINE and key; the committed runbooks are clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from govops.runbook.loader import lint, load_runbook
from tests.fixtures.runbook import ROOT, isolated_cache, runbook_doc, step, write_runbook

__all__ = ["isolated_cache"]

RUNBOOKS = sorted((ROOT / "runbooks").glob("*.yml"))


def _lint(tmp_path: Path, doc: dict[str, Any] | str) -> list[str]:
    path = tmp_path / "rb.yml"
    if isinstance(doc, str):
        path.write_text(doc, encoding="utf-8")
    else:
        write_runbook(path, doc)
    return [str(e) for e in lint(path).errors]


def _line_of(tmp_path: Path, needle: str) -> int:
    lines = (tmp_path / "rb.yml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.name)
def test_committed_runbooks_lint_clean(path: Path) -> None:
    result = lint(path, ROOT)
    assert result.errors == [], "\n".join(map(str, result.errors))
    runbook = result.runbook
    assert runbook is not None
    for _, s in runbook.steps():  # every step carries the six clears
        c = s.clears
        assert all([c.people, c.work, c.time.deadline, c.responsibility, c.product, c.authority])


def test_national_runbook_proves_the_dispatch_checks() -> None:
    runbook = load_runbook(ROOT / "runbooks/cutover.yml").runbook
    proven = {s.readiness_check for _, s in runbook.steps() if s.readiness_check}
    assert proven == {
        "admin_units_declared",
        "portal_interface_closed",
        "sso_tested",
        "dossier_submission_tested",
        "dossier_records_synced",
        "payment_tested",
        "notifications_processed",
        "agency_codes_published",
        "commune_codes_registered",
        "signing_certificates_issued",
        "legacy_data_inherited",
        "restore_drill_verified",
    }
    phases = [p.id for p in runbook.phases]
    assert phases == [
        "adjustment",
        "network_transfer",
        "trial",
        "go_no_go",
        "official_operation",
        "hypercare",
    ]
    executors = {a.executor for _, s in runbook.steps() for a in (s.action, s.verify)}
    # Systems and counterparts are called by operation (through adapters), never by URL.
    assert {"operation", "ansible", "promql", "manual"} <= executors and "http" not in executors


@pytest.mark.parametrize(
    "missing", ["people", "work", "time", "responsibility", "product", "authority"]
)
def test_a_missing_clear_is_refused_with_line_and_key(tmp_path: Path, missing: str) -> None:
    bad = step("b")
    del bad["clears"][missing]
    errors = _lint(tmp_path, runbook_doc([("one", [step("a"), bad])]))
    line = _line_of(tmp_path, "- id: b") + 2  # the clears: key of step b
    assert errors == [
        f"{tmp_path / 'rb.yml'}:{line}: phases[0].steps[1].clears.{missing}: "
        "expected a value (required key is missing)"
    ]


@pytest.mark.parametrize(
    "missing", ["action", "preconditions", "verify", "rollback", "timeout", "retries"]
)
def test_a_missing_step_key_is_refused(tmp_path: Path, missing: str) -> None:
    bad = step("a")
    del bad[missing]
    errors = _lint(tmp_path, runbook_doc([("one", [bad])]))
    assert len(errors) == 1
    assert f"phases[0].steps[0].{missing}: expected a value" in errors[0]
    assert f"rb.yml:{_line_of(tmp_path, '- id: a')}:" in errors[0]


def test_cross_references(tmp_path: Path) -> None:
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step("a", action={"executor": "teleport"}),
                    step("b", pre=[{"step": "c"}], readiness_check="no_such_check"),
                    step("c", pre=[{"readiness": "sso_tested"}]),
                    step("a"),
                ],
            ),
        ],
        waves={"pilot": ["atlantis"], "batch_size": 1, "max_concurrency": 1, "max_errors": 0},
    )
    errors = "\n".join(_lint(tmp_path, doc))
    assert "waves.pilot[0]: expected a province codename" in errors
    assert (
        "steps[0].action.executor: expected one of ansible, fabric, http, local, manual" in errors
    )
    assert "steps[1].preconditions[0].step: expected the id of a step that comes earlier" in errors
    assert "steps[1].readiness_check: expected a readiness check of readiness.yml" in errors
    assert (
        "steps[2].preconditions[0].readiness: expected a readiness check proven by an earlier"
        in errors
    )
    assert "steps[3].id: expected a step id used once" in errors
    for line in errors.splitlines():  # each names file:LINE
        assert line.startswith(f"{tmp_path / 'rb.yml'}:")
        assert line.split(":")[1].isdigit()


def test_executor_arguments_and_templates(tmp_path: Path) -> None:
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step("a", action={"executor": "http", "with": {"method": "FETCH", "url": "x"}}),
                    step(
                        "b", action={"executor": "http", "with": {"url": "https://{{ lable }}-x"}}
                    ),
                    step(
                        "c",
                        action={"executor": "promql", "with": {"query": "up", "for": "1h"}},
                        timeout="10m",
                    ),
                    step("d", verify={"executor": "http", "with": {"url": "{{ commune.code }}"}}),
                    step(
                        "e",
                        action={
                            "executor": "http",
                            "with": {"url": "u", "assert": [{"path": "x"}]},
                        },
                    ),
                    step(
                        "f", action={"executor": "noop", "with": {"sleep": "{{ commune_count }}"}}
                    ),
                ],
            ),
        ]
    )
    errors = "\n".join(_lint(tmp_path, doc))
    assert "steps[0].action.with.method: expected 'GET', 'POST'" in errors
    assert "steps[1].action.with.url: expected template variables among" in errors
    assert "got '{{ lable }}'" in errors
    assert "steps[2].action.with.for: expected a hold shorter than the step's timeout" in errors
    assert "steps[3].verify.with.url" in errors and "'{{ commune }}'" in errors  # not foreach
    assert "steps[4].action.with.assert[0]: expected at least one check" in errors
    assert "steps[5]" not in errors  # a templated number is checked once rendered


def test_deadlines_in_order_within_a_phase(tmp_path: Path) -> None:
    doc = runbook_doc(
        [
            ("one", [step("a", deadline="T0+2h"), step("b", deadline="T0+1h")]),
            ("two", [step("c", deadline="T0+30m")]),  # another phase may start earlier
        ]
    )
    errors = _lint(tmp_path, doc)
    assert len(errors) == 1
    assert "steps[1].clears.time.deadline: expected a deadline not before the previous" in errors[0]
    mixed = runbook_doc(
        [
            (
                "one",
                [
                    step("a", deadline="2025-06-27T12:00:00+07:00"),
                    step("b", deadline="2025-06-27T11:00:00+07:00"),
                ],
            )
        ]
    )
    assert len(_lint(tmp_path, mixed)) == 1
    with_t0 = runbook_doc(
        [("one", [step("a", deadline="2025-06-25T12:00:00+07:00"), step("b", deadline="T0+1h")])]
    )
    with_t0["t0"] = "2025-06-25T10:00:00+07:00"  # T0+1h = 11:00, before 12:00
    assert len(_lint(tmp_path, with_t0)) == 1


def test_per_commune_checks_need_foreach(tmp_path: Path) -> None:
    doc = runbook_doc([("one", [step("a", readiness_check="dossier_submission_tested")])])
    assert "foreach: expected foreach: commune" in _lint(tmp_path, doc)[0]


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    assert "expected valid YAML" in _lint(tmp_path, "a: [\n")[0]
    assert "expected a mapping" in _lint(tmp_path, "- 1\n")[0]
    assert "expected an existing file" in str(lint(tmp_path / "nope.yml").errors[0])


def test_missing_playbooks_are_warnings(tmp_path: Path) -> None:
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step(
                        "a",
                        action={"executor": "ansible", "with": {"playbook": "playbooks/none.yml"}},
                    )
                ],
            )
        ]
    )
    path = write_runbook(tmp_path / "rb.yml", doc)
    result = lint(path, ROOT)
    assert result.ok and "playbooks/none.yml does not exist yet" in result.warnings[0]
    assert yaml.safe_load(path.read_text())["name"] == "test"


def test_a_duplicate_key_is_refused_naming_both_lines(tmp_path: Path) -> None:
    path = write_runbook(tmp_path / "rb.yml", runbook_doc([("one", [step("a")])]))
    lines = path.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("timeout:"))
    lines.insert(at + 1, lines[at].replace("10s", "1h"))  # the later one used to win, silently
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _lint(tmp_path, path.read_text(encoding="utf-8")) == [
        f"{path}:{at + 2}: phases[0].steps[0].timeout: expected each key once in a mapping "
        f"(first at line {at + 1}), got 'timeout'"
    ]


@pytest.mark.parametrize("value", [".nan", ".inf", "'nan'", "'inf'", "1.0e+999"])
def test_no_nan_nor_infinity(tmp_path: Path, value: str) -> None:
    gate = {"executor": "promql", "with": {"query": "up", "op": ">", "value": 1}}
    text = yaml.safe_dump(runbook_doc([("one", [step("g", action=gate)])]), sort_keys=False)
    errors = _lint(tmp_path, text.replace("value: 1", f"value: {value}"))
    assert len(errors) == 1 and "phases[0].steps[0].action.with.value" in errors[0], errors
    assert "finite number" in errors[0]
