"""`govops lab status`: the degraded-units column the README promises, and nothing cut with
"…" when the output is piped (a host name or address must be copyable)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from govops.lab.cli import parse_failed_units, print_table, status_table
from govops.lab.hosts import Container

# `systemctl list-units --state=failed --plain --no-legend` as systemd 252 (Debian 12) prints it.
LISTING = (
    "govops-procedures.service loaded failed failed govops procedures stand-in\n"
    "nginx.service             loaded failed failed A high performance web server\n"
)


def _container(name: str, ip: str, state: str = "running") -> Container:
    return Container(
        name=name,
        container=f"lab-{name}",
        ip=ip,
        province="ho_chi_minh",
        system="procedures",
        state=state,
        image="localhost/govops-lab:0123456789ab",
    )


def test_failed_units_are_the_first_word_of_each_line() -> None:
    assert parse_failed_units(LISTING) == ["govops-procedures.service", "nginx.service"]
    assert parse_failed_units("") == []


def test_piped_status_shows_every_name_address_and_degraded_unit_whole() -> None:
    long_name = "ho-chi-minh-procedures-replica-02"
    containers = [
        _container(long_name, "10.213.179.254"),
        _container("ho-chi-minh-db", "10.213.179.10"),
        _container("ho-chi-minh-meetings", "10.213.179.30", state="exited"),
        _container("ho-chi-minh-documents", "10.213.179.40"),
    ]
    degraded = {
        long_name: parse_failed_units(LISTING),
        "ho-chi-minh-db": [],
        "ho-chi-minh-documents": None,  # systemd did not answer
    }
    buffer = io.StringIO()
    narrow = Console(file=buffer, width=60, force_terminal=False, emoji=False)
    print_table(narrow, status_table("lab", containers, degraded))
    text = buffer.getvalue()
    assert "…" not in text
    assert "degraded units" in text
    assert "3 of 4 hosts running, 1 degraded" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "10.213.179.254" in rows[long_name]
    assert "govops-procedures.service, nginx.service" in rows[long_name]
    cells = [cell.strip() for cell in rows["ho-chi-minh-db"].split("│")]
    assert cells[6] == "-"  # running, nothing failed
    assert [c.strip() for c in rows["ho-chi-minh-documents"].split("│")][6] == "?"


def test_on_a_terminal_the_table_fits_the_terminal() -> None:
    buffer = io.StringIO()
    terminal = Console(file=buffer, width=60, force_terminal=True, color_system=None)
    containers = [_container("ho-chi-minh-procedures-replica-02", "10.213.179.254")]
    print_table(terminal, status_table("lab", containers, {}))
    assert max(len(line) for line in buffer.getvalue().splitlines()) <= 60


def test_the_commands_a_rehearsal_prints_work_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVOPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GOVOPS_RUNBOOK_STATE", raising=False)
    from click.testing import CliRunner

    from govops.cli import main
    from govops.lab.cli import next_commands
    from tests.fixtures.runbook import runbook_doc, step, write_runbook

    # A rehearsal's store: not the default one (GOVOPS_CACHE is the test's own, empty).
    store = tmp_path / "cache" / "lab" / "lab" / "rehearsal.sqlite3"
    store.parent.mkdir(parents=True)
    book = write_runbook(tmp_path / "rb.yml", runbook_doc([("one", [step("a")])]))
    runner = CliRunner()
    ran = runner.invoke(
        main, ["cutover", "run", str(book), "--provinces", "hue", "--state", str(store)]
    )
    assert ran.exit_code == 0, ran.output
    run_id = ran.output.split("run ", 1)[1].split(" ", 1)[0]
    for line in next_commands(run_id, store):
        args = line.split()
        assert args[0] == "govops"
        result = runner.invoke(main, args[1:])
        assert result.exit_code == 0, (line, result.output)
        assert run_id in result.output or "National readiness" in result.output
