"""The executors against real local servers: HTTPS with a CA of our own and inventory name
mapping, a real Prometheus, a real SSH server (paramiko's server side), real ansible-playbook."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko
import pytest

from govops.runbook.executors import ExecContext, ExecutorError, Outcome, RunSettings, executor
from govops.runbook.executors.promql import QueryError
from tests.fixtures.runbook import isolated_cache

__all__ = ["isolated_cache"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings(tmp_path: Path, **kw: Any) -> RunSettings:
    base: dict[str, Any] = {
        "env": "test",
        "root": tmp_path,
        "log_dir": tmp_path / "logs",
        "inventory": tmp_path / "inventory",
    }
    return RunSettings(**(base | kw))


def call(
    name: str, args: dict[str, Any], s: RunSettings, timeout: float = 10, **kw: Any
) -> Outcome:
    spec = executor(name)
    ctx = ExecContext(
        run_id="run",
        province="hue",
        step_id="step",
        role="action",
        idempotency_key="run/hue/step",
        attempt=1,
        timeout=timeout,
        settings=s,
        **kw,
    )
    return spec.run(spec.Args.model_validate(args), ctx)


# --- HTTPS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a certificate for hue-procedures signed by it (openssl)."""
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
    )
    openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=hue-procedures",
    )
    (d / "ext.cnf").write_text("subjectAltName=DNS:hue-procedures\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return d


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.startswith("/login"):
            self._json(302, {}, {"Location": "/callback?code=1"})
        elif self.path.startswith("/callback"):
            self._json(200, {"authenticated": True, "subject": "test"})
        else:
            self._json(
                200,
                {
                    "status": "ready",
                    "count": 3,
                    "missing": ["00002"],
                    "key": self.headers.get("Idempotency-Key"),
                },
            )

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._json(201 if body.get("ok") else 422, {"echo": body})


@pytest.fixture(scope="module")
def https_server(pki: Path) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_https_with_ca_and_inventory_addresses(
    tmp_path: Path, pki: Path, https_server: int
) -> None:
    s = settings(
        tmp_path,
        ca_bundle=pki / "ca.pem",
        resolve="inventory",
        addresses={"hue-procedures": "127.0.0.1"},
    )
    base = f"https://hue-procedures:{https_server}"
    ok = call(
        "http",
        {
            "url": f"{base}/readyz",
            "assert": [
                {"path": "status", "equals": "ready"},
                {"path": "count", "gte": 3, "lt": 4},
                {"path": "missing", "excludes": "00001", "contains": "00002"},
                {"path": "key", "equals": "run/hue/step"},
            ],
        },
        s,
    )
    assert ok.ok, ok.message
    redirected = call(
        "http", {"url": f"{base}/login", "assert": [{"path": "authenticated", "equals": True}]}, s
    )
    assert redirected.ok, redirected.message
    not_followed = call(
        "http", {"url": f"{base}/login", "follow_redirects": False, "expect_status": 302}, s
    )
    assert not_followed.ok, not_followed.message
    posted = call(
        "http",
        {
            "method": "POST",
            "url": f"{base}/x",
            "json": {"ok": True},
            "expect_status": 201,
            "assert": [{"path": "echo.ok", "equals": True}],
        },
        s,
    )
    assert posted.ok, posted.message
    refused = call(
        "http",
        {"method": "POST", "url": f"{base}/x", "json": {"ok": False}, "expect_status": 201},
        s,
    )
    assert not refused.ok and "answered 422, expected 201" in refused.message
    wrong = call("http", {"url": f"{base}/readyz", "assert": [{"path": "count", "equals": 4}]}, s)
    assert not wrong.ok and "count: expected 4, got 3" in wrong.message


def test_https_refuses_an_untrusted_certificate(tmp_path: Path, https_server: int) -> None:
    s = settings(tmp_path, resolve="inventory", addresses={"hue-procedures": "127.0.0.1"})
    with pytest.raises(ExecutorError, match="not trusted"):
        call("http", {"url": f"https://hue-procedures:{https_server}/readyz"}, s)


def test_http_connection_refused(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="refused"):
        call("http", {"url": f"http://127.0.0.1:{free_port()}/"}, settings(tmp_path))


# --- Prometheus -----------------------------------------------------------------------------


class _Metrics:
    """A /metrics endpoint whose value the test flips."""

    def __init__(self) -> None:
        self.value = 1
        metrics = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = f'govops_test_up{{province="hue"}} {metrics.value}\n'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, _Metrics]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run scripts/install-system-deps.sh")
    metrics = _Metrics()
    d = tmp_path_factory.mktemp("prometheus")
    (d / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n  - job_name: test\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics.port}']}}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # ready, and the first scrape stored
            with contextlib.suppress(OSError, ValueError):
                query = f"{url}/api/v1/query?query=govops_test_up"
                with urllib.request.urlopen(query, timeout=2) as answer:
                    if json.loads(answer.read())["data"]["result"]:
                        break
            if time.monotonic() > deadline:
                pytest.fail("prometheus did not start scraping within 30 s")
            time.sleep(0.3)
        yield url, metrics
    finally:
        proc.terminate()
        proc.wait(10)
        metrics.server.shutdown()


def test_promql_gate_holds_then_fails(tmp_path: Path, prometheus: tuple[str, _Metrics]) -> None:
    url, metrics = prometheus
    s = settings(tmp_path, prometheus_url=url)
    gate = {
        "query": 'govops_test_up{province="{{ province }}"}'.replace("{{ province }}", "hue"),
        "op": "==",
        "value": 1,
        "for": "2s",
        "interval": "0.5s",
    }
    began = time.monotonic()
    held = call("promql", gate, s, timeout=10)
    assert held.ok, held.message
    assert 2 <= time.monotonic() - began < 6 and "held 2" in held.message
    metrics.value = 0
    time.sleep(2.5)  # two scrapes later Prometheus has the new value
    failed = call("promql", gate, s, timeout=3)
    assert not failed.ok and "not held" in failed.message and "not == 1" in failed.message
    metrics.value = 1
    empty = call("promql", {"query": 'govops_test_up{province="atlantis"}'}, s, timeout=1)
    assert not empty.ok and "0 series" in empty.message  # no data never passes
    with pytest.raises(QueryError, match="refused"):
        call("promql", {"query": "sum(("}, s, timeout=5)


def test_promql_unreachable_is_a_false_sample(tmp_path: Path) -> None:
    s = settings(tmp_path, prometheus_url=f"http://127.0.0.1:{free_port()}")
    out = call("promql", {"query": "up", "interval": "0.2s"}, s, timeout=0.6)
    assert not out.ok and "unreachable" in out.message


# --- SSH (Fabric) ---------------------------------------------------------------------------


class _SSHServer(paramiko.ServerInterface):
    def __init__(self, allowed: paramiko.PKey) -> None:
        self.allowed = allowed
        self.command: bytes | None = None
        self.event = threading.Event()

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = username == "root" and key.get_base64() == self.allowed.get_base64()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return (
            paramiko.OPEN_SUCCEEDED
            if kind == "session"
            else paramiko.OPEN_FAILED_UNKNOWN_CHANNEL_TYPE
        )

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.command = command
        self.event.set()
        return True


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """A real SSH server on loopback (paramiko's server side) that runs commands with sh."""
    host_key = paramiko.RSAKey.generate(2048)
    client_key = paramiko.RSAKey.generate(2048)
    key_file = tmp_path / "id_rsa"
    client_key.write_private_key_file(str(key_file))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} ssh-rsa {host_key.get_base64()}\n")
    stop = threading.Event()

    def serve(sock: socket.socket) -> None:
        transport = paramiko.Transport(sock)
        transport.add_server_key(host_key)
        server = _SSHServer(client_key)
        try:
            transport.start_server(server=server)
            channel = transport.accept(10)
            if channel is None or not server.event.wait(10) or server.command is None:
                return
            done = subprocess.run(["sh", "-c", server.command.decode()], capture_output=True)
            channel.sendall(done.stdout)
            channel.sendall_stderr(done.stderr)
            channel.send_exit_status(done.returncode)
            channel.close()
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            time.sleep(0.1)
            transport.close()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed at teardown
                return
            threading.Thread(target=serve, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield port, key_file, known
    stop.set()
    listener.close()


def test_fabric_runs_a_command_with_host_keys_checked(
    tmp_path: Path, sshd: tuple[int, Path, Path]
) -> None:
    port, key, known = sshd
    s = settings(tmp_path, ssh_key=key, known_hosts=known)
    ok = call("fabric", {"hosts": [f"127.0.0.1:{port}"], "command": "echo hello-$((40 + 2))"}, s)
    assert ok.ok, ok.message
    assert "hello-42" in Path(ok.data["log"]).read_text()
    failing = call("fabric", {"hosts": [f"127.0.0.1:{port}"], "command": "exit 3"}, s)
    assert not failing.ok and "exit 3" in failing.message
    stranger = tmp_path / "empty_known_hosts"
    stranger.write_text("")
    refused = call(
        "fabric",
        {"hosts": [f"127.0.0.1:{port}"], "command": "true"},
        settings(tmp_path, ssh_key=key, known_hosts=stranger),
    )
    assert not refused.ok and "host key" in refused.message


# --- Ansible --------------------------------------------------------------------------------


def local_inventory(tmp_path: Path) -> None:
    """inventory/hosts.yml: localhost, local connection, in province_hue."""
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yml").write_text(
        "all:\n  children:\n    province_hue:\n      hosts:\n        localhost:\n"
        "          ansible_connection: local\n"
        '          ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
    )


def test_ansible_playbook_limit_check_mode_and_failure(tmp_path: Path) -> None:
    local_inventory(tmp_path)
    target = tmp_path / "made.txt"
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.copy:\n"
        f"        dest: {target}\n"
        '        content: "{{ govops_idempotency_key }} {{ govops_cutover_action }}"\n'
        "    - ansible.builtin.fail: {msg: boom}\n      when: fail_now | default(false) | bool\n"
    )
    s = settings(tmp_path)
    checked = call(
        "ansible",
        {"playbook": "play.yml", "extra_vars": {"govops_cutover_action": "apply"}},
        s,
        timeout=120,
        check_mode=True,
    )
    assert checked.ok, checked.message
    assert not target.exists()  # --check changed nothing
    assert "--check" in Path(checked.data["log"]).read_text() or "changed=1" in checked.message
    applied = call(
        "ansible",
        {"playbook": "play.yml", "extra_vars": {"govops_cutover_action": "apply"}},
        s,
        timeout=120,
    )
    assert applied.ok, applied.message
    assert target.read_text() == "run/hue/step apply"
    assert "localhost" in applied.message and "failed=0" in applied.message
    failed = call(
        "ansible",
        {
            "playbook": "play.yml",
            "extra_vars": {"govops_cutover_action": "apply", "fail_now": True},
        },
        s,
        timeout=120,
    )
    assert not failed.ok and "failed=1" in failed.message
    nobody = call("ansible", {"playbook": "play.yml", "limit": "province_ha_noi"}, s, timeout=120)
    assert not nobody.ok  # --limit matched no host: refuse rather than do nothing silently
    with pytest.raises(ExecutorError, match="does not exist"):
        call("ansible", {"playbook": "nope.yml"}, s)


def test_ansible_step_runs_with_converges_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GOVOPS_MITOGEN=1 takes the runbooks' Ansible steps through Mitogen like `govops converge`,
    and their facts are cached under the environment's own folder."""
    local_inventory(tmp_path)
    target = tmp_path / "env.txt"
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.copy:\n"
        f"        dest: {target}\n"
        "        content: \"{{ lookup('env', 'ANSIBLE_STRATEGY') }} "
        "{{ lookup('env', 'ANSIBLE_CACHE_PLUGIN_CONNECTION') }}\"\n"
    )
    monkeypatch.setenv("GOVOPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ANSIBLE_CACHE_PLUGIN_CONNECTION", raising=False)
    monkeypatch.setenv("GOVOPS_MITOGEN", "1")
    ran = call("ansible", {"playbook": "play.yml"}, settings(tmp_path), timeout=120)
    assert ran.ok, ran.message
    strategy, facts = target.read_text().split()
    assert strategy == "mitogen_linear"
    assert facts == str(tmp_path / "cache" / "ansible-facts" / "test")
    monkeypatch.setenv("GOVOPS_MITOGEN", "0")
    assert call("ansible", {"playbook": "play.yml"}, settings(tmp_path), timeout=120).ok
    assert target.read_text().split()[0] != "mitogen_linear"


# --- the engine with these executors ----------------------------------------------------------


def test_promql_precondition_gates_a_step(tmp_path: Path, prometheus: tuple[str, _Metrics]) -> None:
    from govops.runbook.state import open_store
    from tests.fixtures.runbook import (
        runbook_doc,
        small_environment,
        start,
        statuses,
        step,
        write_runbook,
    )

    url, metrics = prometheus
    metrics.value = 1
    doc = runbook_doc(
        [("one", [step("a", pre=[{"promql": 'govops_test_up{province="{{ province }}"} == 1'}])])],
        settings={"prometheus_url": url},
        waves={"batch_size": 3, "max_concurrency": 3, "max_errors": 3},
    )
    with open_store(str(tmp_path / "s.sqlite3")) as store:
        run, engine = start(
            store,
            write_runbook(tmp_path / "rb.yml", doc),
            small_environment(("tuyen_quang", "hue")),
        )
        assert engine.execute() == "completed_with_failures"
        # Only Huế has the series: Tuyên Quang's precondition finds no data and fails.
        assert statuses(store, run.id) == {"tuyen_quang": "rolled_back", "hue": "done"}
        message = {(s.province, s.step_id): s.message for s in store.steps(run.id)}
        assert "0 series" in message[("tuyen_quang", "a")]


def test_dry_run_check_runs_ansible_in_check_mode(tmp_path: Path) -> None:
    from govops.runbook.model import Runbook
    from govops.runbook.plan import check_ansible
    from tests.fixtures.runbook import runbook_doc, small_environment, step

    local_inventory(tmp_path)
    target = tmp_path / "never.txt"
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        f"    - ansible.builtin.copy: {{dest: {target}, content: x}}\n"
    )
    doc = runbook_doc(
        [("one", [step("a", action={"executor": "ansible", "with": {"playbook": "play.yml"}})])]
    )
    runbook = Runbook.model_validate(doc)
    seen: list[tuple[str, bool]] = []
    ok = check_ansible(
        runbook,
        small_environment(("hue",)),
        ["hue"],
        settings(tmp_path),
        datetime.now(UTC),
        {},
        lambda p, s, o: seen.append((p, o.ok)),
    )
    assert ok and seen == [("hue", True)]
    assert not target.exists()


def test_inventory_addresses_from_the_rendered_lab_inventory() -> None:
    from govops.runbook.context import inventory_addresses
    from tests.fixtures.runbook import ROOT

    addresses = inventory_addresses(ROOT / "inventories" / "lab")
    assert addresses["hue-procedures"].startswith("10.213.46.")
    assert addresses["monitor"] == "10.213.0.10"
