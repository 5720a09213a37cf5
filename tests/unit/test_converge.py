"""`govops converge`: stats, inputs, limits, the command line; and real ansible-playbook runs
through ansible-runner against localhost (connection local) in a throwaway checkout."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret
from click.testing import CliRunner

from govops.ansible.cli import converge_cmd
from govops.ansible.converge import (
    Converge,
    ConvergeInputError,
    ConvergeRequest,
    ConvergeResult,
    HostRecap,
    LabNotUp,
    converge,
    format_recap,
    summary,
)
from govops.ansible.playbook import asked_passwords, recap_from_stats, run_playbook
from govops.errors import GovopsError
from govops.lab.paths import LabPaths
from govops.playbook_env import mitogen_requested

# A `playbook_on_stats` event's data, as ansible-runner hands it over.
STATS = {
    "ok": {"hue-db": 12, "hue-procedures": 30},
    "changed": {"hue-db": 3},
    "dark": {"monitor": 1},
    "failures": {"hue-procedures": 1},
    "skipped": {"hue-db": 2, "hue-procedures": 4},
    "rescued": {"hue-procedures": 1},
    "ignored": {},
    "processed": {"hue-db": 1, "hue-procedures": 1, "monitor": 1},
}


def test_the_recap_comes_from_ansible_stats_per_host() -> None:
    recap = recap_from_stats(STATS)
    assert sorted(recap) == ["hue-db", "hue-procedures", "monitor"]
    assert recap["hue-db"] == HostRecap(
        "hue-db", ok=12, changed=3, unreachable=0, failed=0, skipped=2
    )
    assert recap["hue-procedures"].failed == 1 and recap["hue-procedures"].rescued == 1
    assert recap["monitor"] == HostRecap("monitor", ok=0, changed=0, unreachable=1, failed=0)


def test_the_password_prompts_asked_for_are_recognised() -> None:
    assert asked_passwords(["-e", "x=1", "--ask-vault-pass", "-K", "-J"]) == ["vault", "become"]
    assert asked_passwords(["--vault-password-file", "f"]) == []


def test_the_result_tells_changed_failed_and_ok_apart() -> None:
    result = ConvergeResult(
        command=["ansible-playbook"], returncode=2, recap=recap_from_stats(STATS)
    )
    assert not result.ok
    assert result.changed_hosts == ["hue-db"]
    assert result.failed_hosts == ["hue-procedures", "monitor"]
    assert result.totals()["ok"] == 42
    quiet = ConvergeResult(command=[], returncode=0, recap={"a": HostRecap("a", 3, 0, 0, 0)})
    assert quiet.ok and quiet.changed_hosts == []
    # A run that ended 0 with a failed host (ignore_unreachable and the like) is not ok either.
    assert not ConvergeResult(command=[], returncode=0, recap=recap_from_stats(STATS)).ok


def test_summary_and_recap_lines() -> None:
    result = ConvergeResult(command=[], returncode=0, recap=recap_from_stats(STATS), seconds=61.23)
    line = summary(result, "lab")
    assert line.startswith("lab: 3 hosts, changed=3 on 1 host, failed=1, unreachable=1")
    assert line.endswith("61.2 s")
    lines = format_recap(result.recap)
    assert [x.split()[0] for x in lines] == ["hue-db", "hue-procedures", "monitor"]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A minimal checkout: two inventories (one a lab) and two playbooks."""
    (tmp_path / "playbooks" / "cutover").mkdir(parents=True)
    for name in ("site.yml", "rollout.yml", "cutover/drain.yml"):
        (tmp_path / "playbooks" / name).write_text("- hosts: all\n", encoding="utf-8")
    for env in ("lab", "production"):
        (tmp_path / "inventories" / env).mkdir(parents=True)
        (tmp_path / "inventories" / env / "hosts.yml").write_text("all: {}\n", encoding="utf-8")
    (tmp_path / "inventories" / "lab" / "topology.yml").write_text("hosts: []\n", encoding="utf-8")
    return tmp_path


def make(checkout: Path, **kwargs: object) -> Converge:
    env = str(kwargs.pop("env", "lab"))
    request = ConvergeRequest(env=env, **kwargs)  # type: ignore[arg-type]
    return Converge(checkout, request, lab_paths=LabPaths(checkout / "cache" / "lab"), environ={})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"env": "../etc"}, "expected a name"),
        ({"env": "staging"}, "inventories/staging/hosts.yml: missing"),
        ({"playbook": "nope.yml"}, "known: rollout.yml, site.yml"),
    ],
)
def test_bad_input_is_refused_with_exit_code_2(
    checkout: Path, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ConvergeInputError, match=message.replace(".", r"\.")) as info:
        make(checkout, **kwargs)
    assert info.value.exit_code == 2


def test_a_lab_that_is_not_up_is_refused(checkout: Path) -> None:
    with pytest.raises(LabNotUp, match="govops lab up --env lab"):
        make(checkout).lab_limit()


def test_a_lab_is_limited_to_its_running_hosts(checkout: Path) -> None:
    converge = make(checkout, check=True, extra_args=("-e", "x=1"))
    limit_file = converge.lab_paths.hosts_limit("lab")
    limit_file.parent.mkdir(parents=True)
    limit_file.write_text("# running\nhue-db\nhue-procedures\n\n", encoding="utf-8")
    lab = converge.lab_limit()
    assert lab == (f"@{limit_file}", ["hue-db", "hue-procedures"])
    argv = converge.command(lab[0])
    assert argv[1:] == [
        "-i",
        str(checkout / "inventories" / "lab"),
        str(checkout / "playbooks" / "site.yml"),
        "--limit",
        f"@{limit_file}",
        "--check",
        "-e",
        "x=1",
    ]


def test_production_is_not_limited_and_a_playbook_may_be_in_a_subfolder(checkout: Path) -> None:
    converge = make(checkout, env="production", playbook="cutover/drain.yml", limit="hue-db")
    assert converge.lab_limit() is None
    argv = converge.command(converge.request.limit)
    assert argv[2:] == [
        str(checkout / "inventories" / "production"),
        str(checkout / "playbooks" / "cutover" / "drain.yml"),
        "--limit",
        "hue-db",
    ]


def test_facts_are_cached_per_cache_dir_and_environment(checkout: Path) -> None:
    lab = make(checkout).env()
    production = make(checkout, env="production").env()
    assert lab["ANSIBLE_CACHE_PLUGIN_CONNECTION"] == str(
        checkout / "cache" / "ansible-facts" / "lab"
    )
    assert production["ANSIBLE_CACHE_PLUGIN_CONNECTION"].endswith("/ansible-facts/production")
    assert lab["ANSIBLE_ROLES_PATH"] == str(checkout / "roles")
    # What the caller set wins.
    request = ConvergeRequest(env="lab")
    mine = Converge(checkout, request, environ={"ANSIBLE_CACHE_PLUGIN_CONNECTION": "/x"}).env()
    assert mine["ANSIBLE_CACHE_PLUGIN_CONNECTION"] == "/x"


# --- real runs: ansible-playbook through ansible-runner, hosts a and b on localhost ------------

SITE = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Settings Ansible runs with
      ansible.builtin.debug:
        msg: >-
          forks={{ lookup('ansible.builtin.config', 'DEFAULT_FORKS') }}
          host_key_checking={{ lookup('ansible.builtin.config', 'HOST_KEY_CHECKING') }}
          marker={{ marker | default('none') }}
          strategy={{ lookup('ansible.builtin.config', 'DEFAULT_STRATEGY') }}
      run_once: true
    - name: Write the host's file
      ansible.builtin.copy:
        dest: "{{ out_dir }}/{{ inventory_hostname }}.txt"
        content: "{{ inventory_hostname }}\\n"
        mode: "0600"
    - name: Fail where asked
      ansible.builtin.fail:
        msg: asked to fail
      when: inventory_hostname in (fail_on | default([]))
"""

SLOW = """\
- hosts: a
  gather_facts: false
  tasks:
    - name: Sleep, saying where
      ansible.builtin.shell: "echo $$ > {{ out_dir }}/sleeper.pid; exec sleep 120"
"""


@pytest.fixture
def local(tmp_path: Path) -> Path:
    """A checkout whose hosts are this machine (connection local), with its own ansible.cfg."""
    root = tmp_path / "checkout"
    (root / "playbooks").mkdir(parents=True)
    (root / "playbooks" / "site.yml").write_text(SITE, encoding="utf-8")
    (root / "playbooks" / "slow.yml").write_text(SLOW, encoding="utf-8")
    (root / "ansible.cfg").write_text("[defaults]\nforks = 7\n", encoding="utf-8")
    (root / "out").mkdir()
    host = "{ansible_connection: local, ansible_python_interpreter: '{{ansible_playbook_python}}'}"
    out = root / "out"
    hosts = f"all:\n  vars: {{out_dir: '{out}'}}\n  hosts:\n    a: {host}\n    b: {host}\n"
    for env in ("production", "lab"):
        (root / "inventories" / env).mkdir(parents=True)
        (root / "inventories" / env / "hosts.yml").write_text(hosts, encoding="utf-8")
    (root / "inventories" / "lab" / "topology.yml").write_text("hosts: []\n", encoding="utf-8")
    return root


def run_local(
    root: Path, env: str = "production", **kwargs: object
) -> tuple[ConvergeResult, list[str]]:
    lines: list[str] = []
    environ = dict(os.environ)
    environ.update(kwargs.pop("environ", {}))  # type: ignore[call-overload]
    prompt = kwargs.pop("prompt", None)
    request = ConvergeRequest(env=env, **kwargs)  # type: ignore[arg-type]
    result = converge(
        root,
        request,
        echo=lines.append,
        lab_paths=LabPaths(root / "cache" / "lab"),
        environ=environ,
        prompt=prompt,  # type: ignore[arg-type]
    )
    return result, lines


def test_a_real_run_reports_stats_changes_and_timing_then_changes_nothing(local: Path) -> None:
    first, lines = run_local(local, extra_args=("-e", "marker=m1"))
    assert first.ok and first.returncode == 0, "\n".join(lines)
    assert sorted(first.recap) == ["a", "b"]
    assert first.recap["a"] == HostRecap("a", ok=2, changed=1, unreachable=0, failed=0, skipped=1)
    assert first.recap["b"].changed == 1 and first.recap["b"].skipped == 1
    assert first.changes == {"a": ["Write the host's file"], "b": ["Write the host's file"]}
    assert set(first.task_seconds) == {
        "Settings Ansible runs with",
        "Write the host's file",
        "Fail where asked",
    }
    assert all(seconds >= 0 for seconds in first.task_seconds.values())
    # Wall spans: every task, and each play's setup, from the events' timestamps.
    assert set(first.task_seconds) <= set(first.task_wall)
    assert any(name.startswith("(play) ") for name in first.task_wall)
    assert 0 < sum(first.task_wall.values()) <= first.seconds
    assert (local / "out" / "b.txt").read_text(encoding="utf-8") == "b\n"
    text = "\n".join(lines)
    # The checkout's ansible.cfg applies (run from the root), host keys stay checked (which
    # ansible-runner would turn off), extra args reach Ansible, the output streams uncoloured.
    assert "forks=7 host_key_checking=True marker=m1" in text
    assert "TASK [Write the host's file]" in text and "PLAY RECAP" in text
    assert "\x1b[" not in text
    second, _ = run_local(local)
    assert second.ok and second.changed_hosts == [] and second.changes == {}


def test_mitogen_runs_the_same_tasks_and_is_chosen_by_flag_or_environment(local: Path) -> None:
    first, lines = run_local(local, mitogen=True)
    assert first.ok, "\n".join(lines)
    assert "strategy=mitogen_linear" in "\n".join(lines)
    assert first.changes == {"a": ["Write the host's file"], "b": ["Write the host's file"]}
    again, lines = run_local(local, environ={"GOVOPS_MITOGEN": "yes"})
    assert again.ok and again.changed_hosts == [] and "strategy=mitogen_linear" in "\n".join(lines)
    # The flag wins over the environment; without either, Mitogen (the default); 0: Ansible's.
    plain, lines = run_local(local, mitogen=False, environ={"GOVOPS_MITOGEN": "1"})
    assert plain.ok and "strategy=linear" in "\n".join(lines)
    plain, lines = run_local(local, environ={"GOVOPS_MITOGEN": "0"})
    assert plain.ok and "strategy=linear" in "\n".join(lines)
    default, lines = run_local(local, environ={"GOVOPS_MITOGEN": ""})
    assert default.ok and "strategy=mitogen_linear" in "\n".join(lines)


def test_a_word_govops_mitogen_does_not_know_is_refused() -> None:
    assert mitogen_requested({"GOVOPS_MITOGEN": " Yes "}) and mitogen_requested({})
    assert not mitogen_requested({"GOVOPS_MITOGEN": "0"})
    assert not mitogen_requested({"GOVOPS_MITOGEN": " off "})
    with pytest.raises(GovopsError, match=r"GOVOPS_MITOGEN='maybe': expected one of 1, on"):
        mitogen_requested({"GOVOPS_MITOGEN": "maybe"})


def test_check_mode_changes_nothing_and_failures_are_counted(local: Path) -> None:
    checked, _ = run_local(local, check=True)
    assert checked.ok and checked.changed_hosts == ["a", "b"]
    assert not (local / "out" / "a.txt").exists(), "--check wrote a file"
    failed, lines = run_local(local, extra_args=("-e", '{"fail_on": ["b"]}'))
    assert not failed.ok and failed.returncode == 2
    assert failed.failed_hosts == ["b"] and failed.recap["b"].failed == 1
    assert "asked to fail" in "\n".join(lines)


def test_ansible_config_from_the_environment_wins(local: Path) -> None:
    other = local / "other.cfg"
    other.write_text("[defaults]\nforks = 3\n", encoding="utf-8")
    result, lines = run_local(local, environ={"ANSIBLE_CONFIG": str(other)})
    assert result.ok and "forks=3 " in "\n".join(lines)


def test_a_lab_run_is_limited_to_the_running_hosts(local: Path) -> None:
    limit_file = LabPaths(local / "cache" / "lab").hosts_limit("lab")
    limit_file.parent.mkdir(parents=True)
    limit_file.write_text("a\n", encoding="utf-8")
    result, _ = run_local(local, env="lab", limit="all")
    assert result.ok and sorted(result.recap) == ["a"] and result.limited_to == ["a"]
    assert not (local / "out" / "b.txt").exists()


def test_vault_secrets_are_asked_for_or_read_from_a_file(local: Path) -> None:
    vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(b"open sesame"))])
    secret = local / "inventories" / "production" / "group_vars" / "all" / "vault.yml"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(vault.encrypt("marker: from-vault\n"))
    asked: list[str] = []

    def prompt(kind: str) -> str:
        asked.append(kind)
        return "open sesame"

    result, lines = run_local(local, extra_args=("--ask-vault-pass",), prompt=prompt)
    assert result.ok and asked == ["vault"], "\n".join(lines)
    assert "marker=from-vault" in "\n".join(lines)
    assert "open sesame" not in "\n".join(lines)
    password_file = local / "vault-pass"
    password_file.write_text("open sesame\n", encoding="utf-8")
    by_file, lines = run_local(local, extra_args=("--vault-password-file", str(password_file)))
    assert by_file.ok and "marker=from-vault" in "\n".join(lines)
    with pytest.raises(ConvergeInputError, match="--vault-password-file FILE") as info:
        run_local(local, extra_args=("--ask-vault-pass",))
    assert info.value.exit_code == 2


def test_sigterm_stops_the_playbook_and_its_children(local: Path) -> None:
    """SIGTERM (or Ctrl-C) during a run kills ansible-playbook's process group; the
    handlers that were installed before the run are back afterwards."""
    pid_file = local / "out" / "sleeper.pid"
    before = signal.getsignal(signal.SIGTERM)
    sent: list[float] = []

    def cancel() -> bool:
        if pid_file.exists() and not sent:
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGTERM)
        return False

    argv = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        str(local / "inventories" / "production"),
        str(local / "playbooks" / "slow.yml"),
    ]
    started = time.monotonic()
    pids: list[int] = []
    done = run_playbook(
        argv, cwd=local, env={"ANSIBLE_NOCOLOR": "1"}, cancel=cancel, started=pids.append
    )
    assert done.status == "canceled" and sent
    # The pid it was told of is ansible-playbook's, and gone with it.
    assert len(pids) == 1 and not _alive(pids[0])
    assert time.monotonic() - started < 60, "the run was not stopped"
    assert signal.getsignal(signal.SIGTERM) is before
    sleeper = int(pid_file.read_text(encoding="utf-8"))
    deadline = time.monotonic() + 10
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(sleeper), f"the playbook's child {sleeper} outlived the run"


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_the_cli_keeps_its_output_and_exit_codes(local: Path, tmp_path: Path) -> None:
    env = {"GOVOPS_ROOT": str(local), "GOVOPS_CACHE": str(tmp_path / "cache")}
    runner = CliRunner()
    ok = runner.invoke(converge_cmd, ["--env", "production", "--quiet"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "PLAY RECAP" in ok.output and "TASK [" not in ok.output
    assert "converged production: 2 hosts, changed=2 on 2 hosts, failed=0" in ok.output
    failed = runner.invoke(
        converge_cmd, ["--env", "production", "--", "-e", '{"fail_on": ["a"]}'], env=env
    )
    assert failed.exit_code == 1
    assert "TASK [Fail where asked]" in failed.output and "FAILED production" in failed.output
    # Ansible refuses the extra vars before any play: quiet or not, its reason is shown.
    bad = runner.invoke(
        converge_cmd, ["--env", "production", "-q", "--", "-e", "reason=it's"], env=env
    )
    assert bad.exit_code == 1
    assert "before any recap" in bad.output and "ERROR" in bad.output, bad.output
