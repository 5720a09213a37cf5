"""Command lines fuzzed: every option of `govops cutover lint / run --dry-run / status / report`,
`govops registry validate`, `govops monitoring cutover-exporter / prober / prober-config`, and
the exporters' own command lines. Any value ends in exit 0 or 2 (naming the option or file),
never a traceback; nothing is served (the servers are replaced) and nothing written outside
the test's folder. Then the read-only readers: status, report and the exporter never create a
store, and a missing one is exit 2 naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporters.cutover_exporter import __main__ as exporter_main
from exporters.govops_prober import __main__ as prober_main
from tests.fixtures.runbook import ROOT, isolated_cache, runbook_doc, step, write_runbook

from .fuzz_support import FUZZ, assert_clean, invoke

__all__ = ["isolated_cache"]

NASTY = [
    "",
    " ",
    "-",
    "--",
    "-x",
    "0",
    "-1",
    "1",
    "65535",
    "65536",
    "99999999999999999999",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "now",
    "2025-06-27T17:00:00+07:00",
    "2025-06-27T17:00:00",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "2025-13-45T00:00:00+07:00",
    "hue",
    "hue,tuyen_quang",
    "hue,hue",
    ",,,",
    "atlantis",
    "lab",
    "production",
    "LAB",
    "../lab",
    "a=b",
    "=",
    "=x",
    "name=",
    "prometheus_url=http://u:p@h/",
    "prometheus_url=http://h/?token=t",
    "prometheus_url=not a url",
    "poll_interval=.nan",
    "poll_interval=-1s",
    "poll_interval=99999999999d",
    "resolve=x",
    "inventory={{ nope }}",
    "axis_recipient={{ 1/0 }}",  # the rehearsal's vars: a template failing, not parsing, unknown
    "axis_recipient={{ nope",
    "test_procedure={{ nope }}",
    "[/]",
    "[bold]x",
    ":100:",
    "host:",
    ":80",
    "host:0",
    "[::1]:9472",
    "127.0.0.1:99999",
    "localhost:9472",
    "no-such-host.invalid:9472",
    "é中文",
    "{{ 1/0 }}",
    "a" * 300,
]
WORDS = st.sampled_from(NASTY) | st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=16,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A runbook, a store with one finished run, and paths of every kind for --state / -o."""
    tmp = tmp_path_factory.mktemp("world")
    runbook = write_runbook(tmp / "rb.yml", runbook_doc([("one", [step("a"), step("b")])]))
    state = tmp / "state.sqlite3"
    result = invoke(["cutover", "run", str(runbook), "--provinces", "hue", "--state", str(state)])
    assert result.exit_code == 0, result.output
    run_id = json.loads(invoke(["cutover", "status", "--json", "--state", str(state)]).output)[0]
    (tmp / "not-a-db.sqlite3").write_text("hello", encoding="utf-8")
    (tmp / "a-file").write_text("x", encoding="utf-8")
    (tmp / "a-dir").mkdir()
    return {
        "tmp": tmp,
        "runbook": str(runbook),
        "state": str(state),
        "run": run_id["id"],
        "states": [
            str(state),
            str(tmp / "missing" / "state.sqlite3"),
            str(tmp / "not-a-db.sqlite3"),
            str(tmp / "a-dir"),
            f"sqlite://{state}",
            "postgresql://127.0.0.1:1/none",
        ],
        "outputs": [
            str(tmp / "out" / "deep" / "report.txt"),
            str(tmp / "a-file" / "report.txt"),
            str(tmp / "a-dir"),
            str(tmp / "report.html"),
        ],
        "files": [
            str(runbook),
            str(tmp / "missing.yml"),
            str(tmp / "a-dir"),
            str(tmp / "not-a-db.sqlite3"),
            str(ROOT / "runbooks" / "rehearsal.yml"),
        ],
    }


@pytest.fixture(autouse=True)
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command line good enough to serve returns at once instead."""
    monkeypatch.setattr(exporter_main, "serve", lambda *a, **k: None)
    monkeypatch.setattr(prober_main, "run", lambda *a, **k: None)


# Options that write a file: only ever paths inside the test's folder.
WRITES = {"-o", "--output", "--out"}


def _options(draw: st.DrawFn, names: list[str], values: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name in draw(st.lists(st.sampled_from(names), max_size=4)):
        if name.startswith("flag:"):
            args.append(name.removeprefix("flag:"))
            continue
        choices = values.get(name)
        if name in WRITES:
            value = draw(st.sampled_from(choices))
        else:
            value = draw(st.sampled_from(choices) | WORDS) if choices else draw(WORDS)
        args += [name, value]
    return args


@st.composite
def cutover_lines(draw: st.DrawFn, world: dict[str, Any]) -> list[str]:
    states = {"--state": world["states"]}
    command = draw(st.sampled_from(["lint", "run", "status", "report"]))
    if command == "lint":
        files = draw(st.lists(st.sampled_from(world["files"]) | WORDS, min_size=1, max_size=3))
        return ["cutover", "lint", *files, *_options(draw, ["flag:--strict"], {})]
    if command == "run":
        runbook = draw(st.sampled_from(world["files"]))
        names = ["--env", "--provinces", "--t0", "--var", "--set", "--inventories", "flag:--json"]
        values = {"--inventories": [str(world["tmp"]), str(ROOT / "inventories")]}
        return ["cutover", "run", runbook, "--dry-run", *_options(draw, names, values)]
    if command == "status":
        run = draw(st.lists(st.sampled_from([world["run"]]) | WORDS, max_size=1))
        options = _options(draw, ["--state", "flag:--json"], states)
        return [
            "cutover",
            "status",
            *run,
            *options,
            "--state",
            draw(st.sampled_from(world["states"])),
        ]
    run = draw(st.sampled_from([world["run"]]) | WORDS)
    values = {
        "--format": ["text", "json", "html"],
        "-o": world["outputs"],
        "--output": world["outputs"],
        **states,
    }
    options = _options(draw, ["--format", "-o", "--output"], values)
    return ["cutover", "report", run, *options, "--state", draw(st.sampled_from(world["states"]))]


@st.composite
def monitoring_lines(draw: st.DrawFn, world: dict[str, Any]) -> list[str]:
    command = draw(st.sampled_from(["registry", "cutover-exporter", "prober", "prober-config"]))
    if command == "registry":
        return ["registry", "validate", *_options(draw, ["--env", "flag:--all-envs"], {})]
    if command == "cutover-exporter":
        names = ["--listen", "--state", "--run"]
        return ["monitoring", command, *_options(draw, names, {"--state": world["states"]})]
    names = ["--listen", "--commune-period", "--ca-file", "--state-dir", "--env", "--endpoints"]
    if command == "prober-config":
        names = [n for n in names if n != "--listen"] + ["--out"]
    values = {
        "--out": world["outputs"],
        "--endpoints": world["files"],
        "--env": ["lab", "production"],
    }
    return ["monitoring", command, *_options(draw, names, values)]


def _judge(args: list[str], world: dict[str, Any]) -> None:
    before = sorted(Path.cwd().iterdir())
    result = invoke(args)
    assert sorted(Path.cwd().iterdir()) == before, f"{args} wrote in {Path.cwd()}"
    # A PostgreSQL that does not answer is an outage (exit 1), not bad input.
    unreachable = any(a.startswith("postgresql://") for a in args)
    assert_clean(result, allowed=(0, 1, 2) if unreachable else (0, 2))
    if result.exit_code == 1:
        assert "Connection refused" in result.output, result.output
    # Nothing was written outside the test's folder, and no store made where there was none.
    assert not (world["tmp"] / "missing" / "state.sqlite3").exists()


@FUZZ
@given(data=st.data())
def test_cutover_command_lines(world: dict[str, Any], data: st.DataObject) -> None:
    _judge(data.draw(cutover_lines(world)), world)


@FUZZ
@given(data=st.data())
def test_registry_and_monitoring_command_lines(world: dict[str, Any], data: st.DataObject) -> None:
    _judge(data.draw(monitoring_lines(world)), world)


EXPORTER_OPTIONS = [
    "--listen", "--state", "--run", "--config", "--env", "--endpoints", "--ca-file",
    "--log-level", "--bogus", "lab", "debug",
]  # fmt: skip


@FUZZ
@given(argv=st.lists(st.sampled_from(EXPORTER_OPTIONS) | WORDS, max_size=6))
def test_the_exporters_own_command_lines(argv: list[str]) -> None:
    for main in (exporter_main.main, prober_main.main):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors are exit 2
            code = exc.code if isinstance(exc.code, int) else 2
        assert code in (0, 2), (main, argv, code)


# -- read-only readers -----------------------------------------------------------------------------
def test_status_and_report_never_create_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "state.sqlite3"
    for args in (
        ["cutover", "status"],
        ["cutover", "status", "--json"],
        ["cutover", "status", "some-run"],
        ["cutover", "report", "some-run"],
        ["cutover", "report", "some-run", "--format", "html", "-o", str(tmp_path / "r.html")],
    ):
        result = invoke([*args, "--state", str(missing)])
        assert result.exit_code == 2, result.output
        assert f"{missing}: --state: expected an existing state store" in result.output
    assert not missing.exists() and not missing.parent.exists()
    default = invoke(["cutover", "status"], env={"GOVOPS_CACHE": str(tmp_path / "cache")})
    assert default.exit_code == 2 and "state.sqlite3" in default.output
    assert not (tmp_path / "cache").exists()


def test_report_makes_the_output_folder_and_refuses_an_unwritable_path(
    world: dict[str, Any],
) -> None:
    deep = world["tmp"] / "reports" / "2025" / "report.html"
    made = invoke(["cutover", "report", world["run"], "-o", str(deep), "--format", "html",
                   "--state", world["state"]])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "<!DOCTYPE html>" in deep.read_text(encoding="utf-8")
    under_a_file = world["tmp"] / "a-file" / "report.txt"
    refused = invoke(["cutover", "report", world["run"], "-o", str(under_a_file),
                      "--state", world["state"]])  # fmt: skip
    assert refused.exit_code == 2
    assert "--output: expected a file path that can be written" in refused.output


@pytest.mark.parametrize("listen", ["host:0", "host:65536", "127.0.0.1:99999", "9472", "h:x"])
def test_listen_ports_out_of_range_exit_2(listen: str) -> None:
    result = invoke(["monitoring", "cutover-exporter", "--listen", listen])
    assert result.exit_code == 2 and "--listen" in result.output, result.output
    prober = invoke(["monitoring", "prober", "--env", "lab", "--listen", listen])
    assert prober.exit_code == 2 and "--listen" in prober.output, prober.output


def test_overflowing_deadlines_and_times_exit_2(tmp_path: Path) -> None:
    far = runbook_doc([("one", [step("a", deadline="T0+99999999999999d")])])
    path = write_runbook(tmp_path / "far.yml", far)
    result = invoke(["cutover", "lint", str(path)])
    assert result.exit_code == 2 and "clears.time.deadline" in result.output
    late = write_runbook(tmp_path / "ok.yml", runbook_doc([("one", [step("a")])]))
    for t0 in ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"):
        run = invoke(["cutover", "run", str(late), "--dry-run", "--t0", t0])
        assert run.exit_code == 2 and "--t0" in run.output, run.output
    nan = runbook_doc([("one", [step("a", timeout=".nan")])])
    text = write_runbook(tmp_path / "nan.yml", nan).read_text().replace("'.nan'", ".nan")
    (tmp_path / "nan.yml").write_text(text)
    result = invoke(["cutover", "lint", str(tmp_path / "nan.yml")])
    assert result.exit_code == 2 and "timeout: expected a finite number" in result.output


def test_a_missing_postgresql_store_is_reported_not_created(postgres: Any) -> None:
    """The same on PostgreSQL: a database that does not exist is exit 2 naming it, and the
    exporter's reason is `missing`; a store read by them is opened read-only."""
    from prometheus_client import CollectorRegistry, generate_latest

    from exporters.cutover_exporter.collector import CutoverCollector
    from exporters.cutover_exporter.source import RunbookStoreSource
    from govops.runbook.state import AuditEntry, StateError, open_store

    missing = postgres.dsn("no_such_store")
    result = invoke(["cutover", "status", "--state", missing])
    assert result.exit_code == 2 and "--state: expected an existing state store" in result.output
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CutoverCollector(RunbookStoreSource(missing)))
    metrics = generate_latest(registry).decode()
    assert 'govops_cutover_down_info{reason="missing"} 1.0' in metrics
    assert "govops_cutover_up 0.0" in metrics
    existing = postgres.create_database("read_only_store")
    open_store(existing).close()  # made by an engine
    with open_store(existing, read_only=True) as store, pytest.raises(StateError) as refused:
        store.request_abort("x", AuditEntry("x", 0.0, "tester", "run.abort"))
    assert "read-only transaction" in str(refused.value)
