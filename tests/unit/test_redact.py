"""Secrets: one redaction everywhere (govops/redact.py); Prometheus credentials used, never kept.

End to end: a password in a state URL (`?password=` or userinfo) and tokens in the URLs a
runbook calls never appear in what the CLI prints, in the audit log, the step rows,
`status --json` or the report; a Prometheus that wants credentials gets them from the
environment, for the gates and the PromQL preconditions alike.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result

from govops.cli import main
from govops.redact import (
    MASK,
    RedactingFilter,
    credentials_in_url,
    redact,
    redact_argv,
    redact_dsn,
    redact_text,
    redact_url,
)
from govops.runbook.executors.promql import prometheus_authorization
from govops.runbook.state import open_store
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.runbook import isolated_cache, runbook_doc, step, write_runbook

__all__ = ["isolated_cache"]

AUTH_VARS = ("TOKEN", "TOKEN_FILE", "USER", "PASSWORD", "PASSWORD_FILE")


# -- the function --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://alice:s3cret@db:5432/x", "postgresql://alice:***@db:5432/x"),
        (
            "postgresql://alice@db/x?sslmode=require&Password=s3cret&sslpassword=k",
            "postgresql://alice@db/x?sslmode=require&Password=***&sslpassword=***",
        ),
        ("https://ghp_token@prom:9090/api", "https://***@prom:9090/api"),
        (
            "http://u:p@[::1]:9090/?access_token=zz&query=up&API_KEY=k&secret=s",
            "http://u:***@[::1]:9090/?access_token=***&query=up&API_KEY=***&secret=***",
        ),
        # Where a secret is, not the secret: kept for diagnosis.
        (
            "postgresql://db/x?passfile=/home/a/.pgpass",
            "postgresql://db/x?passfile=/home/a/.pgpass",
        ),
        ("https://prom:9090/api/v1/query?query=up", "https://prom:9090/api/v1/query?query=up"),
    ],
)
def test_urls(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_text(f"at {url} unreachable") == f"at {shown} unreachable"


def test_conninfo_command_lines_headers_and_structures() -> None:
    dsn = redact_dsn("host=db user=alice password='s e c' dbname=x")
    assert "s e c" not in dsn and "user=alice" in dsn and "password=***" in dsn
    assert redact_text("host=db password=hunter2 dbname=x") == "host=db password=*** dbname=x"
    assert redact_argv(["tool", "--password", "x", "--client-secret=y", "-p", "22"]) == [
        "tool",
        "--password",
        MASK,
        "--client-secret=***",
        "-p",
        "22",
    ]
    text = redact_text('curl -H "Authorization: Bearer abc.def" --token t1 https://x/?api_key=K')
    assert not any(s in text for s in ("abc.def", "t1", "=K"))
    assert redact_text('{"Authorization": "Basic dXNlcg==", "authority": "chair"}') == (
        '{"Authorization": "***", "authority": "chair"}'
    )
    assert redact_text("GOVOPS_PROMETHEUS_PASSWORD=x GOVOPS_IDEMPOTENCY_KEY=r/hue/a") == (
        "GOVOPS_PROMETHEUS_PASSWORD=*** GOVOPS_IDEMPOTENCY_KEY=r/hue/a"
    )
    data = {"url": "http://a:b@h/", "password": "x", "steps": [{"message": "token=abc"}]}
    assert redact(data) == {
        "url": "http://a:***@h/",
        "password": MASK,
        "steps": [{"message": "token=***"}],
    }
    assert credentials_in_url("http://u:p@h/?token=1&x=2") == ["userinfo", "token"]
    assert credentials_in_url("http://h:9090/") == []


def test_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("govops.test.redact")
    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.error("cannot reach %s", "postgresql://a:hunter2@db/x")
    finally:
        logger.removeHandler(handler)
    assert seen == ["cannot reach postgresql://a:***@db/x"]


# -- end to end: nothing the CLI prints or the store keeps holds a secret -------------------------
class _Recorder(BaseHTTPRequestHandler):
    """/ok answers 200, /fail 500; a Prometheus /api/v1/query that wants `expected` as its
    Authorization header when one is set. Every Authorization header seen is kept."""

    expected: ClassVar[str | None] = None
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        type(self).seen.append((self.path, auth))
        if self.path.startswith("/api/v1/query"):
            if self.expected is not None and auth != self.expected:
                self._answer(401, {"status": "error", "error": "unauthorized"})
                return
            result = [{"metric": {}, "value": [0, "1"]}]
            self._answer(
                200, {"status": "success", "data": {"resultType": "vector", "result": result}}
            )
            return
        self._answer(200 if self.path.startswith("/ok") else 500, {"ok": True})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"seen": [], "expected": None})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def no_prometheus_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AUTH_VARS:
        monkeypatch.delenv(f"GOVOPS_PROMETHEUS_{name}", raising=False)


def cutover(*args: str) -> Result:
    return CliRunner().invoke(main, ["cutover", *args], catch_exceptions=False)


def _everything(result: Result) -> str:
    return result.output + result.stderr


SECRETS = ("pw-in-query", "pw-in-userinfo", "tok-in-url", "pw-in-action", "key-in-header")


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state URL holding a password: in the query (PostgreSQL's `?password=`) or userinfo."""
    if request.param == "sqlite":
        return str(tmp_path / "state.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    dsn = server.create_database(f"redact_{len(server.created)}")
    # Trust authentication: the server ignores the password; the suite must not print it.
    return f"{dsn}?password=pw-in-query"


def test_no_secret_in_output_audit_steps_status_or_report(
    tmp_path: Path, state: str, server: tuple[str, type[_Recorder]]
) -> None:
    base, _ = server
    host = base.removeprefix("http://")
    ok = {
        "executor": "http",
        "with": {
            "url": f"http://{host}/ok?password=pw-in-action&step=a",
            "headers": {"Authorization": "Bearer key-in-header"},
        },
    }
    failing = {"executor": "http", "with": {"url": f"{base}/fail?access_token=tok-in-url"}}
    doc = runbook_doc([("one", [step("a", action=ok), step("b", action=failing)])])
    path = write_runbook(tmp_path / "rb.yml", doc)
    userinfo_state = state
    if state.startswith("postgresql://"):  # the same database, the password in the userinfo
        parts = urllib.parse.urlsplit(state)
        user, _, hostport = parts.netloc.rpartition("@")
        netloc = f"{user}:pw-in-userinfo@{hostport}"
        userinfo_state = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    printed = []
    run = cutover("run", str(path), "--provinces", "hue", "--state", state)
    assert run.exit_code == 1, run.output  # step b failed: the province rolled back
    printed.append(_everything(run))
    run_id = json.loads(cutover("status", "--json", "--state", state).output)[0]["id"]
    for args in (
        ("status", "--json"),
        ("status",),
        ("status", run_id, "--json"),
        ("status", run_id),
        ("report", run_id),
        ("report", run_id, "--format", "json"),
        ("report", run_id, "--format", "html"),
    ):
        result = cutover(*args, "--state", userinfo_state if "status" in args else state)
        assert result.exit_code == 0, result.output
        printed.append(_everything(result))
    with open_store(state, read_only=True) as store:
        # The runbook's text is kept verbatim (resume runs it): what it holds, git holds too.
        run = replace(store.run(run_id), runbook_text="")
        stored = [repr(store.audit(run_id)), repr(store.steps(run_id)), repr(run)]
        stored.append(repr(store.provinces(run_id)))
    everything = "\n".join(printed + stored)
    assert "answered 500" in everything and "access_token=***" in everything  # it was there
    for secret in SECRETS:
        assert secret not in everything, secret


def test_credentials_in_a_prometheus_url_are_refused_and_not_echoed(
    tmp_path: Path, state: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = {"executor": "promql", "with": {"query": "up"}}
    path = write_runbook(tmp_path / "g.yml", runbook_doc([("one", [step("g", action=gate)])]))
    given = cutover(
        "run", str(path), "--provinces", "hue", "--state", state,
        "--set", "prometheus_url=http://admin:pw-in-userinfo@127.0.0.1:9/",
    )  # fmt: skip
    assert given.exit_code == 2
    assert "prometheus_url" in given.output and "GOVOPS_PROMETHEUS_TOKEN" in given.output
    monkeypatch.setenv("GOVOPS_PROMETHEUS_URL", "http://127.0.0.1:9/?token=tok-in-url")
    from_env = cutover("run", str(path), "--provinces", "hue", "--state", state)
    assert from_env.exit_code == 2
    for result in (given, from_env):
        assert "Traceback" not in result.output
        for secret in SECRETS:
            assert secret not in _everything(result)
    # In the runbook itself: a lint error naming the line.
    doc = runbook_doc(
        [("one", [step("g", action=gate)])],
        settings={"prometheus_url": "https://u:pw-in-userinfo@prom:9090"},
    )
    lint = cutover("lint", str(write_runbook(tmp_path / "s.yml", doc)))
    assert lint.exit_code == 2 and "settings.prometheus_url" in lint.output
    assert "pw-in-userinfo" not in _everything(lint)


# -- Prometheus credentials are used --------------------------------------------------------------
def _gated(tmp_path: Path, base: str) -> Path:
    gate = {"executor": "promql", "with": {"query": "up", "interval": "1s"}}
    doc = runbook_doc(
        [("one", [step("g", action=gate, pre=[{"promql": 'up{job="x"}'}])])],
        settings={"prometheus_url": base},
    )
    return write_runbook(tmp_path / "gated.yml", doc)


def test_a_bearer_token_reaches_prometheus(
    tmp_path: Path, server: tuple[str, type[_Recorder]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, handler = server
    handler.expected = "Bearer tok-in-env"
    monkeypatch.setenv("GOVOPS_PROMETHEUS_TOKEN", "tok-in-env")
    state = str(tmp_path / "state.sqlite3")
    result = cutover("run", str(_gated(tmp_path, base)), "--provinces", "hue", "--state", state)
    assert result.exit_code == 0, result.output
    queries = [auth for path, auth in handler.seen if path.startswith("/api/v1/query")]
    assert len(queries) >= 2  # the precondition, then the gate
    assert set(queries) == {"Bearer tok-in-env"}
    with open_store(state, read_only=True) as store:
        run_id = store.runs(1)[0].id
        kept = repr(store.audit(run_id)) + repr(store.steps(run_id)) + repr(store.run(run_id))
    assert "tok-in-env" not in kept and "tok-in-env" not in result.output


def test_basic_auth_from_a_password_file_reaches_prometheus(
    tmp_path: Path, server: tuple[str, type[_Recorder]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, handler = server
    handler.expected = "Basic " + base64.b64encode(b"govops:pw-in-file").decode()
    secret = tmp_path / "prometheus-password"
    secret.write_text("pw-in-file\n", encoding="utf-8")
    monkeypatch.setenv("GOVOPS_PROMETHEUS_USER", "govops")
    monkeypatch.setenv("GOVOPS_PROMETHEUS_PASSWORD_FILE", str(secret))
    state = str(tmp_path / "state.sqlite3")
    result = cutover("run", str(_gated(tmp_path, base)), "--provinces", "hue", "--state", state)
    assert result.exit_code == 0, result.output
    queries = [auth for path, auth in handler.seen if path.startswith("/api/v1/query")]
    assert queries and set(queries) == {handler.expected}


def test_without_credentials_a_prometheus_that_wants_them_fails_the_step_saying_so(
    tmp_path: Path, server: tuple[str, type[_Recorder]]
) -> None:
    base, handler = server
    handler.expected = "Bearer something"
    state = str(tmp_path / "state.sqlite3")
    result = cutover("run", str(_gated(tmp_path, base)), "--provinces", "hue", "--state", state)
    assert result.exit_code == 1
    run_id = json.loads(cutover("status", "--json", "--state", state).output)[0]["id"]
    report = cutover("report", run_id, "--format", "json", "--state", state)
    assert "answered 401: no credentials given (GOVOPS_PROMETHEUS_TOKEN" in report.output


def test_credentials_given_wrongly_exit_2_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _gated(tmp_path, "http://127.0.0.1:9")
    state = tmp_path / "state.sqlite3"
    for env in (
        {"GOVOPS_PROMETHEUS_TOKEN": "t", "GOVOPS_PROMETHEUS_USER": "u"},
        {"GOVOPS_PROMETHEUS_USER": "u"},
        {"GOVOPS_PROMETHEUS_PASSWORD_FILE": str(tmp_path / "missing")},
        {"GOVOPS_PROMETHEUS_TOKEN": "t", "GOVOPS_PROMETHEUS_TOKEN_FILE": "/x"},
    ):
        for name in AUTH_VARS:
            monkeypatch.delenv(f"GOVOPS_PROMETHEUS_{name}", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        result = cutover("run", str(path), "--provinces", "hue", "--state", str(state))
        assert result.exit_code == 2, (env, result.output)
        assert "GOVOPS_PROMETHEUS_" in result.output and "Traceback" not in result.output
    assert not state.exists()


def test_authorization_header_values() -> None:
    assert prometheus_authorization({}) is None
    assert prometheus_authorization({"GOVOPS_PROMETHEUS_TOKEN": "abc"}) == "Bearer abc"
    basic = prometheus_authorization(
        {"GOVOPS_PROMETHEUS_USER": "u", "GOVOPS_PROMETHEUS_PASSWORD": "p"}
    )
    assert basic == "Basic " + base64.b64encode(b"u:p").decode()


def test_an_actions_own_output_is_redacted_in_its_log_file(tmp_path: Path) -> None:
    """A tool may print a URL with its password (a failing psql, a verbose client): the
    action's log file is kept for the post-mortem, redacted, readable by its owner only."""
    cache = tmp_path / "cache"
    script = (
        "echo connecting to postgresql://ops:pw-in-tool-output@db:5432/x; "
        "echo 'Authorization: Bearer tok-in-tool-output'; echo done"
    )
    doc = runbook_doc(
        [
            (
                "one",
                [
                    step(
                        "a", action={"executor": "local", "with": {"command": ["sh", "-c", script]}}
                    )
                ],
            )
        ]
    )
    path = write_runbook(tmp_path / "rb.yml", doc)
    result = CliRunner(env={"GOVOPS_CACHE": str(cache)}).invoke(
        main,
        ["cutover", "run", str(path), "--provinces", "hue", "--state", str(tmp_path / "s.db")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    logs = [p for p in cache.rglob("*.log") if "a-" in p.name]
    assert logs, f"no action log under {cache}"
    text = "\n".join(p.read_text(encoding="utf-8") for p in logs)
    assert "done" in text and "postgresql://ops:***@db:5432/x" in text
    assert "pw-in-tool-output" not in text and "tok-in-tool-output" not in text
    assert all(p.stat().st_mode & 0o077 == 0 for p in logs)
