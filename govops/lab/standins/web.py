"""HTTP mechanics: request/response, a small router, the threaded server, the outbound client."""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from .core import HTTPError, UpstreamUnavailable

MAX_BODY = 8 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    raw_query: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.raw_query).items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise HTTPError(400, "invalid_json", str(exc)) from exc
        if not isinstance(data, dict):
            raise HTTPError(400, "invalid_json", "expected a JSON object")
        return data

    def form(self) -> dict[str, str]:
        """application/x-www-form-urlencoded (OAuth style) or a JSON object."""
        if (self.header("content-type") or "").startswith("application/json"):
            return {k: str(v) for k, v in self.json().items()}
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, default=str).encode()
    return Response(
        status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    )


def redirect(location: str) -> Response:
    return json_response(302, {"location": location}, {"Location": location})


Result = Response | tuple[int, Any]
Handler = Callable[[Request], Result]


class Router:
    """Patterns like /api/dossiers/{id}; {name:rest} matches the rest of the path."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler, str]] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        def group(m: re.Match[str]) -> str:
            name, _, kind = m.group(1).partition(":")
            return f"(?P<{name}>.+)" if kind == "rest" else f"(?P<{name}>[^/]+)"

        regex = re.compile("^" + re.sub(r"\{([a-z_:]+)\}", group, pattern) + "$")
        for method in methods.split("|"):
            self.routes.append((method, regex, handler, pattern))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        method = "GET" if method == "HEAD" else method
        allowed = set()
        for route_method, regex, handler, _ in self.routes:
            m = regex.match(path)
            if m:
                if route_method == method:
                    params = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
                    return handler, params
                allowed.add(route_method)
        if allowed:
            raise HTTPError(405, "method_not_allowed", f"allowed: {', '.join(sorted(allowed))}")
        raise HTTPError(404, "not_found", path)


class Application(Protocol):
    def handle(self, request: Request) -> Response: ...


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: Application) -> None:
        self.app = app
        super().__init__(address, _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: Server
    server_version = "govops-standin"

    def _serve(self) -> None:
        path, _, raw_query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._write(json_response(413, {"error": "body_too_large"}))
            return
        request = Request(
            self.command,
            path,
            raw_query,
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        self._write(self.server.app.handle(request))

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # the app logs each request
        pass


@dataclass
class Upstream:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 302 is an answer to relay, not to follow


class Client:
    """Outbound calls to counterparts; TLS verified against ca_file when it exists."""

    def __init__(self, ca_file: str | None, timeout: float, log: Callable[..., None]) -> None:
        context = ssl.create_default_context()
        if ca_file and Path(ca_file).exists():
            context = ssl.create_default_context(cafile=ca_file)
        elif ca_file:
            log("ca_file_missing", level="warning", ca_file=ca_file)
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirect()
        )
        self.timeout, self.log = timeout, log

    def call(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Upstream:
        headers = dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        shown = url.split("?", 1)[0]  # query strings may carry codes: never logged
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                result = Upstream(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as exc:
            result = Upstream(exc.code, dict((exc.headers or Message()).items()), exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = str(getattr(exc, "reason", exc))
            self.log(
                "upstream_unavailable", level="warning", method=method, url=shown, reason=reason
            )
            raise UpstreamUnavailable(shown, reason) from exc
        self.log("upstream_call", method=method, url=shown, status=result.status)
        return result
