"""The cutover-progress exporter: the runbook's read API as metrics."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporters.cutover_exporter.__main__ import main as exporter_main
from exporters.cutover_exporter.collector import CutoverCollector
from exporters.cutover_exporter.source import ProgressLike, RunbookStoreSource
from govops.runbook.loader import load_runbook
from govops.runbook.runs import create_run
from govops.runbook.state import open_store
from tests.fixtures.runbook import (
    isolated_cache,
    runbook_doc,
    small_environment,
    step,
    write_runbook,
)

__all__ = ["isolated_cache"]

NOW = datetime(2025, 6, 28, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    id: str = "national-cutover-20250627"
    runbook: str = "national-cutover"
    status: str = "running"


@dataclass(frozen=True)
class Step:
    province: str
    step_id: str
    status: str
    deadline: datetime
    expected_seconds: float = 600.0
    late: bool = False
    at_risk: bool = False


@dataclass(frozen=True)
class Province:
    province: str
    status: str
    steps_done: int
    steps_total: int = 3


@dataclass(frozen=True)
class Readiness:
    check_id: str
    dispatch_done: int | None
    provinces_done: tuple[str, ...]


@dataclass(frozen=True)
class Coverage:
    province: str
    step_id: str
    tested: int
    total: int


@dataclass(frozen=True)
class Progress:
    run: Run
    now: datetime
    provinces: list[Province]
    steps: list[Step]
    readiness: list[Readiness]
    communes: list[Coverage]


class Fixed:
    def __init__(self, progress: ProgressLike | None, fail: bool = False) -> None:
        self.value, self.fail = progress, fail

    def progress(self) -> ProgressLike | None:
        if self.fail:
            raise RuntimeError("database is locked")
        return self.value


def scrape(source: Fixed | RunbookStoreSource) -> dict[str, float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CutoverCollector(source))
    out = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def progress() -> Progress:
    hour = timedelta(hours=1)
    return Progress(
        run=Run(),
        now=NOW,
        provinces=[Province("hue", "running", 2), Province("hai_phong", "failed", 1)],
        steps=[
            Step("hue", "declare_units", "done", NOW - hour),
            Step("hue", "test_every_commune", "running", NOW + hour / 2, 3600, at_risk=True),
            Step("hai_phong", "register_commune_codes", "failed", NOW - hour / 4, late=True),
        ],
        readiness=[
            Readiness("admin_units_declared", 34, ("hue", "hai_phong")),
            Readiness("dossier_submission_tested", 8, ()),
        ],
        communes=[Coverage("hue", "test_every_commune", 30, 40)],
    )


def test_steps_deadlines_readiness_and_communes() -> None:
    m = scrape(Fixed(progress()))
    assert m["govops_cutover_up"] == 1
    assert m['govops_cutover_step_status{province="hue",status="done",step="declare_units"}'] == 1
    assert (
        m['govops_cutover_step_status{province="hue",status="pending",step="declare_units"}'] == 0
    )
    late = (
        'govops_cutover_deadline_seconds_left{province="hai_phong",step="register_commune_codes"}'
    )
    assert m[late] == -900  # a quarter of an hour late
    left = 'govops_cutover_deadline_seconds_left{province="hue",step="test_every_commune"}'
    assert m[left] == 1800
    assert m['govops_cutover_step_at_risk{province="hue",step="test_every_commune"}'] == 1
    # A done step has a deadline but no "seconds left": it can never be late again.
    assert 'govops_cutover_deadline_seconds_left{province="hue",step="declare_units"}' not in m
    done = 'govops_readiness_check_done{check="admin_units_declared",province="hai_phong"}'
    assert m[done] == 1
    assert m['govops_readiness_check_done{check="dossier_submission_tested",province="hue"}'] == 0
    assert m['govops_readiness_dispatch_done{check="dossier_submission_tested"}'] == 8
    assert m['govops_cutover_communes_tested{province="hue",step="test_every_commune"}'] == 30
    assert m['govops_cutover_province_status{province="hai_phong",status="failed"}'] == 1


def test_an_unreadable_store_is_reported_not_raised() -> None:
    m = scrape(Fixed(None, fail=True))
    assert m["govops_cutover_up"] == 0
    assert m['govops_cutover_down_info{reason="error"}'] == 1
    assert "govops_cutover_scrape_duration_seconds" in m


def test_a_missing_store_is_down_with_a_reason_and_never_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "state.sqlite3"
    m = scrape(RunbookStoreSource(str(missing)))
    assert m["govops_cutover_up"] == 0
    assert m['govops_cutover_down_info{reason="missing"}'] == 1
    assert not missing.exists() and not missing.parent.exists()


def test_something_else_at_the_path_is_not_a_store(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).close()  # an empty SQLite file: no runbook tables
    m = scrape(RunbookStoreSource(str(other)))
    assert m["govops_cutover_up"] == 0
    assert m['govops_cutover_down_info{reason="not_a_store"}'] == 1


def test_no_run_yet_is_up_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    open_store(str(path)).close()  # made by an engine (a writer), with no run yet
    before = path.read_bytes()
    m = scrape(RunbookStoreSource(str(path)))
    assert m["govops_cutover_up"] == 1
    assert not any(k.startswith("govops_cutover_down_info") for k in m)
    assert not any(k.startswith("govops_cutover_step_status") for k in m)
    assert path.read_bytes() == before  # read, nothing written (SQLite may add its -shm)


def test_the_exporter_reads_a_store_the_engine_is_writing(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    doc = runbook_doc([("one", [step("a"), step("b")])])
    loaded = load_runbook(write_runbook(tmp_path / "rb.yml", doc))
    with open_store(str(path)) as store:  # the engine's connection stays open (WAL)
        run = create_run(store, loaded, small_environment(), actor="test", provinces=["hue"])
        m = scrape(RunbookStoreSource(str(path)))
        assert m["govops_cutover_up"] == 1
        info = f'govops_cutover_run_info{{run="{run.id}",runbook="test",status="running"}}'
        assert m[info] == 1


def test_the_exporter_refuses_a_bad_listen_address() -> None:
    for bad in ("9472", "host:", "host:0", "host:65536", "host:99999999", "host:12a", ":80"):
        with pytest.raises(SystemExit) as exit_:
            exporter_main(["--listen", bad, "--state", "/nonexistent"])
        assert exit_.value.code == 2, bad
