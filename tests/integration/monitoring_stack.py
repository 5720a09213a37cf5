"""Real Prometheus, Alertmanager and blackbox_exporter for tests, configured by the roles' own
templates (rendered here with plain Jinja, as Ansible would), on free loopback ports.

Each binary is started by the test and stopped by its PID; data directories are temporary. A
webhook receiver in the test process records what Alertmanager sends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[2]
BINARIES = {
    "prometheus": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "blackbox": "prometheus-blackbox-exporter",
}


def binary(name: str) -> str:
    path = shutil.which(BINARIES[name])
    if path is None:
        raise RuntimeError(
            f"{BINARIES[name]} not found: apt-get install prometheus prometheus-alertmanager "
            "prometheus-blackbox-exporter (scripts/install-system-deps.sh)"
        )
    return path


def role_defaults(role: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (ROOT / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8")
    )
    return data


def render_role_template(role: str, template: str, variables: dict[str, Any]) -> str:
    """Render a role's template as Ansible's template module would (trim_blocks)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROOT / "roles" / role / "templates"),
        trim_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template(template).render(**variables)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def start(name: str, args: list[str], workdir: Path, ready: str) -> Process:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [binary(name), *args], stdout=out, stderr=subprocess.STDOUT, cwd=workdir
        )
    proc = Process(name, popen, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited ({popen.returncode}):\n{proc.tail()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=1) as resp:
            if resp.status == 200:
                return proc
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"{name} not ready at {ready} within 30 s:\n{proc.tail()}")


@dataclass
class Webhook:
    """Alertmanager's webhook receiver: every notification's alerts, in arrival order."""

    server: ThreadingHTTPServer
    alerts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def firing(self, predicate: Callable[[dict[str, str]], bool]) -> list[dict[str, Any]]:
        with self.lock:
            return [
                a for a in self.alerts if a.get("status") == "firing" and predicate(a["labels"])
            ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_webhook(host: str = "127.0.0.1") -> Webhook:
    hook: Webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            with hook.lock:
                hook.alerts.extend(body.get("alerts", []))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    hook = Webhook(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return hook


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for(what: str, check: Callable[[], bool], timeout: float, every: float = 0.5) -> float:
    """Poll until `check()` holds; the seconds it took (fails the test with `what`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def quick_rules(source: Path, dest: Path) -> None:
    """The generated rules with every `for:` shortened to 2 s: the wiring is under test here;
    the rules' timing is proven by `promtool test rules`."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    for group in data["groups"]:
        group.pop("interval", None)
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    dest.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
