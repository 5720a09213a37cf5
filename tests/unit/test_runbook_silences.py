"""Planned work pages nobody: a step declaring `silence:` opens an Alertmanager silence (a real
Alertmanager from Debian, started here) scoped to its matchers while it runs, and expires it at
its end, at its rollback, and after a crash and resume — never two for one step."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govops.runbook.engine import Event
from govops.runbook.executors.base import RunSettings
from govops.runbook.loader import lint
from govops.runbook.silences import Alertmanager, matchers
from govops.runbook.state import Batch, StepRow, Store, open_store
from tests.fixtures.runbook import (
    isolated_cache,
    resume,
    runbook_doc,
    small_environment,
    start,
    statuses,
    step,
    write_runbook,
)
from tests.integration import monitoring_stack as stack

__all__ = ["isolated_cache"]
SILENCE = {"province": "{{ province }}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager on a free loopback port, no cluster, a receiver that sends nowhere."""
    work = tmp_path_factory.mktemp("alertmanager")
    (work / "alertmanager.yml").write_text(
        "route: {receiver: quiet, group_wait: 1s, group_interval: 1s}\n"
        "receivers: [{name: quiet}]\n",
        encoding="utf-8",
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = stack.start(
        "alertmanager",
        [
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        work,
        f"{url}/-/ready",
    )
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    for name in ("URL", "TOKEN", "TOKEN_FILE", "USER", "PASSWORD", "PASSWORD_FILE"):
        monkeypatch.delenv(f"GOVOPS_ALERTMANAGER_{name}", raising=False)
    return open_store(str(tmp_path / "state.sqlite3"))


def _api(url: str, path: str, body: object = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        raw = answer.read()
    return json.loads(raw) if raw.strip() else None


def _of_run(url: str, run_id: str) -> list[dict[str, Any]]:
    return [s for s in _api(url, "/api/v2/silences") if f"[govops {run_id}/" in s["comment"]]


def _active(url: str, run_id: str) -> list[dict[str, Any]]:
    return [s for s in _of_run(url, run_id) if s["status"]["state"] == "active"]


def _post_alerts(url: str, *labels: dict[str, str]) -> None:
    _api(url, "/api/v2/alerts", [{"labels": lb} for lb in labels])


def _silenced(url: str, labels: dict[str, str]) -> bool:
    for alert in _api(url, "/api/v2/alerts"):
        if alert["labels"] == labels:
            return bool(alert["status"]["silencedBy"])
    raise AssertionError(f"alert {labels} not in Alertmanager")


class Watch(list[Event]):
    """The engine's observer: on each event, a look at Alertmanager (what is silenced now)."""

    def __init__(self, url: str, look: Any) -> None:
        super().__init__()
        self.url, self.look, self.seen = url, look, []

    def append(self, event: Event) -> None:
        super().append(event)
        seen = self.look(event)
        if seen is not None:
            self.seen.append(seen)


def _doc(*steps: dict[str, Any]) -> dict[str, Any]:
    return runbook_doc([("one", list(steps))])


def test_a_step_silences_what_it_touches_while_it_runs(
    tmp_path: Path, store: Store, alertmanager: str
) -> None:
    tag = f"{time.time_ns()}"
    mine = {"alertname": "GovopsSystemDown", "province": "hue", "system": "procedures", "t": tag}
    other = {**mine, "province": "tuyen_quang"}
    cutover = {"alertname": "GovopsCutoverStepFailed", "province": "hue", "step": "a", "t": tag}
    _post_alerts(alertmanager, mine, other, cutover)

    def look(event: Event) -> Any:
        if event.kind == "step" and event.status == "running" and event.step == "a":
            return {
                "active": _active(alertmanager, run_id),
                "mine": _silenced(alertmanager, mine),
                "other": _silenced(alertmanager, other),
                "cutover": _silenced(alertmanager, cutover),
            }
        return None

    watch = Watch(alertmanager, look)
    doc = _doc(step("a", silence=SILENCE, expected="2m"), step("b"))
    run, engine = start(
        store,
        write_runbook(tmp_path / "rb.yml", doc),
        small_environment(("hue",)),
        events=watch,
        settings={"alertmanager_url": alertmanager},
    )
    run_id = run.id
    assert engine.execute() == "completed"
    (during,) = watch.seen
    (silence,) = during["active"]
    assert {(m["name"], m["value"], m["isRegex"]) for m in silence["matchers"]} == {
        ("province", "hue", False),
        ("step", "", False),
    }
    assert silence["createdBy"] == "govops cutover"
    # Its window: expected 2m plus a margin of at least 5m.
    starts = time.mktime(time.strptime(silence["startsAt"][:19], "%Y-%m-%dT%H:%M:%S"))
    ends = time.mktime(time.strptime(silence["endsAt"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert 7 * 60 - 5 <= ends - starts <= 7 * 60 + 5
    # Scoped: hue's system alert silenced; another province's and the cutover's own not.
    assert during == {**during, "mine": True, "other": False, "cutover": False}
    # Expired at the step's end; recorded in the audit log.
    assert _active(alertmanager, run.id) == []
    assert not _silenced(alertmanager, mine)
    audit = [(e.action, e.step_id, e.result) for e in store.audit(run.id) if "silence" in e.action]
    assert audit == [("silence.open", "a", "opened"), ("silence.expire", "a", "expired")]
    opened = next(e for e in store.audit(run.id) if e.action == "silence.open")
    assert silence["id"] in opened.detail and 'province="hue"' in opened.detail


def test_a_rollback_silences_its_undoing_then_expires_it(
    tmp_path: Path, store: Store, alertmanager: str
) -> None:
    undo = {"executor": "local", "with": {"command": ["true"]}}
    failing = {"executor": "noop", "with": {"fail": True}}
    doc = _doc(step("a", silence=SILENCE, rollback=undo), step("b", action=failing))
    run, engine = start(
        store,
        write_runbook(tmp_path / "rb.yml", doc),
        small_environment(("hue",)),
        settings={"alertmanager_url": alertmanager},
    )
    engine.execute()
    assert statuses(store, run.id) == {"hue": "rolled_back"}
    comments = sorted(s["comment"].rsplit(" ", 1)[-1] for s in _of_run(alertmanager, run.id))
    assert comments == [f"{run.id}/hue/a/rollback]", f"{run.id}/hue/a]"]
    assert _active(alertmanager, run.id) == []
    actions = [(e.action, e.result) for e in store.audit(run.id) if "silence" in e.action]
    assert actions == [
        ("silence.open", "opened"),
        ("silence.expire", "expired"),
        ("silence.open", "opened"),
        ("silence.expire", "expired"),
    ]


def test_a_crash_mid_step_is_settled_silence_expired_and_reopened_once(
    tmp_path: Path, store: Store, alertmanager: str
) -> None:
    doc = _doc(step("a", silence=SILENCE))
    env = small_environment(("hue",))
    run, _ = start(
        store,
        write_runbook(tmp_path / "rb.yml", doc),
        env,
        settings={"alertmanager_url": alertmanager},
    )
    # As a killed engine leaves it: the silence open, the step running.
    settings = RunSettings(env="lab", root=tmp_path, log_dir=tmp_path, inventory=tmp_path)
    am = Alertmanager(alertmanager, settings)
    key = f"{run.id}/hue/a"
    left, _, reused = am.open(key, matchers({"province": "hue"}), 600, "a in hue")
    assert not reused
    row = StepRow(run.id, "hue", "a", "", "one", "running", 1, 0, key, time.time())
    store.commit(Batch(steps=[row]), run.id)
    assert resume(store, run.id, env).execute(resumed=True) == "completed"
    silences = {s["id"]: s["status"]["state"] for s in _of_run(alertmanager, run.id)}
    assert left in silences and len(silences) == 2  # the crashed one, and the re-run's
    assert set(silences.values()) == {"expired"}
    actions = [(e.action, e.result) for e in store.audit(run.id) if "silence" in e.action]
    assert actions[0] == ("silence.expire", "expired")  # settling, before the re-run
    assert actions[1:] == [("silence.open", "opened"), ("silence.expire", "expired")]


def test_a_resumed_step_reuses_the_silence_it_opened_before_the_crash(
    tmp_path: Path, store: Store, alertmanager: str
) -> None:
    doc = _doc(step("a", silence=SILENCE))
    env = small_environment(("hue",))
    run, _ = start(
        store,
        write_runbook(tmp_path / "rb.yml", doc),
        env,
        settings={"alertmanager_url": alertmanager},
    )
    # Killed between opening the silence and recording the step's start: nothing to settle.
    settings = RunSettings(env="lab", root=tmp_path, log_dir=tmp_path, inventory=tmp_path)
    left, _, _ = Alertmanager(alertmanager, settings).open(
        f"{run.id}/hue/a", matchers({"province": "hue"}), 600, "a in hue"
    )
    assert resume(store, run.id, env).execute(resumed=True) == "completed"
    (only,) = _of_run(alertmanager, run.id)
    assert only["id"] == left and only["status"]["state"] == "expired"
    opened = [e for e in store.audit(run.id) if e.action == "silence.open"]
    assert [e.result for e in opened] == ["reused"]


def test_an_unreachable_alertmanager_fails_the_step_before_its_action(
    tmp_path: Path, store: Store
) -> None:
    marker = tmp_path / "ran"
    action = {"executor": "local", "with": {"command": ["touch", str(marker)]}}
    doc = _doc(step("a", silence=SILENCE, action=action))
    run, engine = start(
        store,
        write_runbook(tmp_path / "rb.yml", doc),
        small_environment(("hue",)),
        settings={"alertmanager_url": f"http://127.0.0.1:{_free_port()}"},
    )
    engine.execute()
    assert not marker.exists()
    (row,) = [r for r in store.steps(run.id) if r.step_id == "a"]
    assert row.status == "failed" and row.message.startswith("silence: Alertmanager at http")
    assert "unreachable" in row.message


def test_without_an_alertmanager_url_the_step_runs_and_says_so(
    tmp_path: Path, store: Store
) -> None:
    doc = _doc(step("a", silence=SILENCE))
    run, engine = start(store, write_runbook(tmp_path / "rb.yml", doc), small_environment(("hue",)))
    assert engine.execute() == "completed"
    (entry,) = [e for e in store.audit(run.id) if e.action == "silence.open"]
    assert entry.result == "not silenced" and "no alertmanager_url" in entry.detail


def test_credentials_come_from_the_environment_and_are_not_shown(
    tmp_path: Path, store: Store, alertmanager: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Alertmanager without auth ignores the header: what is proven is that a bad setting is a
    # clear failure naming the variable, not a traceback, and no secret reaches the audit.
    monkeypatch.setenv("GOVOPS_ALERTMANAGER_TOKEN", "s3cr3t-token")
    monkeypatch.setenv("GOVOPS_ALERTMANAGER_USER", "ops")
    doc = _doc(step("a", silence=SILENCE))
    run, engine = start(
        store,
        write_runbook(tmp_path / "rb.yml", doc),
        small_environment(("hue",)),
        settings={"alertmanager_url": alertmanager},
    )
    engine.execute()
    (row,) = [r for r in store.steps(run.id) if r.step_id == "a"]
    assert row.status == "failed" and "GOVOPS_ALERTMANAGER_TOKEN" in row.message
    assert all("s3cr3t" not in e.detail for e in store.audit(run.id))


@pytest.mark.parametrize(
    ("silence", "expected"),
    [
        ({"alertname": "GovopsSystemDown"}, "a matcher on host, province, system"),
        ({"province": "~.*"}, "a narrower regular expression"),
        ({"province": "{{ nowhere }}"}, "nowhere"),
    ],
)
def test_lint_refuses_a_silence_that_is_not_scoped(
    tmp_path: Path, silence: dict[str, str], expected: str
) -> None:
    path = write_runbook(tmp_path / "rb.yml", _doc(step("a", silence=silence)))
    result = lint(path)
    assert not result.ok
    assert any(expected in str(e) and "silence" in str(e) for e in result.errors), result.errors


def test_the_shipped_runbooks_silence_their_drains_and_switches() -> None:
    root = Path(__file__).resolve().parents[2]
    for name, marked in {
        "rehearsal": {"drain_traffic", "switch_network", "switch_dns", "restore_traffic"},
        "cutover": {"drain_traffic", "switch_network", "switch_dns", "restore_traffic"},
        "rollback": {"drain_traffic", "revert_dns", "revert_network", "restore_traffic"},
    }.items():
        result = lint(root / "runbooks" / f"{name}.yml")
        assert result.ok, result.errors
        assert result.runbook is not None
        silenced = {s.id for _, s in result.runbook.steps() if s.silence}
        assert marked <= silenced, name  # others may be planned work too (each linted above)


def test_the_dry_run_shows_each_silence_with_its_window(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from govops.cli import main

    path = write_runbook(tmp_path / "rb.yml", _doc(step("a", silence=SILENCE, expected="2m")))
    result = CliRunner().invoke(
        main, ["cutover", "run", str(path), "--provinces", "hue", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert 'silence (hue): province="hue", step="" for 7m' in result.output
