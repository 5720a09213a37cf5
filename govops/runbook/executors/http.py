"""`http`: one HTTP call, an expected status and assertions on the JSON answer.

TLS is verified against the run's CA bundle (setting `ca_bundle`), never switched off. With
`resolve: inventory` host names are looked up in the environment's rendered inventory
(`ansible_host`), so the controller needs no DNS for the lab's names; TLS still checks the name.
"""

from __future__ import annotations

import http.client
import json
import operator
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from govops.adapters.assertions import JsonAssert
from govops.runbook.executors.base import Args, ExecContext, Executor, ExecutorError, Outcome
from govops.runbook.executors.transport import opener as http_opener
from govops.runbook.model import Duration

MAX_BODY = 4 * 1024 * 1024


class HttpArgs(Args):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, str] | None = None
    expect_status: int | list[int] = 200
    assertions: list[JsonAssert] = Field(default=[], alias="assert")
    follow_redirects: bool = True
    request_timeout: Duration = 30.0

    @property
    def statuses(self) -> list[int]:
        return [self.expect_status] if isinstance(self.expect_status, int) else self.expect_status


class HttpExecutor(Executor):
    name = "http"
    Args = HttpArgs

    def run(self, args: Any, ctx: ExecContext) -> Outcome:
        assert isinstance(args, HttpArgs)
        status, body, took = call(args, ctx)
        data: dict[str, Any] = {"status": status, "seconds": round(took, 3)}
        if status not in args.statuses:
            return Outcome(
                False,
                f"{args.method} {args.url} answered {status}, expected "
                f"{' or '.join(map(str, args.statuses))}: {_excerpt(body)}",
                data,
            )
        if args.assertions:
            try:
                document = json.loads(body) if body else None
            except ValueError:
                return Outcome(False, f"{args.url}: answer is not JSON: {_excerpt(body)}", data)
            for check in args.assertions:
                problem = evaluate(check, document)
                if problem:
                    return Outcome(False, f"{args.method} {args.url}: {problem}", data)
        return Outcome(True, f"{args.method} {args.url} → {status}", data)

    def describe(self, args: Any) -> str:
        assert isinstance(args, HttpArgs)
        return f"{args.method} {args.url}"


def call(args: HttpArgs, ctx: ExecContext) -> tuple[int, str, float]:
    """Make the request; return status, body and seconds taken (HTTP errors are answers)."""
    parsed = urllib.parse.urlsplit(args.url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ExecutorError(f"url: expected an http(s) URL, got {args.url!r}")
    headers = {"User-Agent": "govops-cutover", "Idempotency-Key": ctx.idempotency_key}
    headers.update(args.headers)
    data: bytes | None = None
    if args.json_body is not None:
        data = json.dumps(args.json_body, ensure_ascii=False).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    elif args.form is not None:
        data = urllib.parse.urlencode(args.form).encode("ascii")
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    request = urllib.request.Request(args.url, data=data, headers=headers, method=args.method)
    opener = http_opener(ctx.settings, args.follow_redirects)
    timeout = max(0.1, min(args.request_timeout, ctx.remaining()))
    started = time.monotonic()
    try:
        with opener.open(request, timeout=timeout) as response:
            status, body = response.status, response.read(MAX_BODY)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(MAX_BODY) if exc.fp is not None else b""
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise ExecutorError(
                f"{args.url}: TLS certificate not trusted ({reason.verify_message}); "
                "is ca_bundle set to the environment's CA?"
            ) from None
        raise ExecutorError(f"{args.method} {args.url}: {reason}") from None
    except TimeoutError:
        raise ExecutorError(f"{args.method} {args.url}: no answer within {timeout:g}s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise ExecutorError(f"{args.method} {args.url}: {exc}") from None
    return status, body.decode("utf-8", errors="replace"), time.monotonic() - started


_MISSING = object()


def lookup(document: Any, path: str) -> Any:
    """`a.b.0.c` into nested dicts and lists; _MISSING when a part is absent."""
    current = document
    for part in [p for p in path.split(".") if p] if path else []:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            if -len(current) <= index < len(current):
                current = current[index]
            else:
                return _MISSING
        else:
            return _MISSING
    return current


def evaluate(check: JsonAssert, document: Any) -> str | None:
    """None if `check` holds on `document`, else what was wrong."""
    value = lookup(document, check.path)
    where = check.path or "(body)"
    given = check.model_fields_set
    if "exists" in given:
        if check.exists and value is _MISSING:
            return f"{where}: expected to exist"
        if not check.exists and value is not _MISSING:
            return f"{where}: expected to be absent, got {_short(value)}"
    others = given - {"exists", "path"}
    if not others:
        return None
    if value is _MISSING:
        return f"{where}: missing from the answer"
    if "equals" in given and not _same(value, check.equals):
        return f"{where}: expected {check.equals!r}, got {_short(value)}"
    if "not_equals" in given and _same(value, check.not_equals):
        return f"{where}: expected anything but {check.not_equals!r}"
    if "in_" in given and not any(_same(value, x) for x in check.in_ or []):
        return f"{where}: expected one of {check.in_!r}, got {_short(value)}"
    if "contains" in given and not _contains(value, check.contains):
        return f"{where}: expected to contain {check.contains!r}, got {_short(value)}"
    if "excludes" in given and _contains(value, check.excludes):
        return f"{where}: expected not to contain {check.excludes!r}, got {_short(value)}"
    if "length" in given and (not hasattr(value, "__len__") or len(value) != check.length):
        return f"{where}: expected length {check.length}, got {_short(value)}"
    bounds: list[tuple[str, float | None, Callable[[float, float], bool]]] = [
        ("gte", check.gte, operator.ge),
        ("lte", check.lte, operator.le),
        ("gt", check.gt, operator.gt),
        ("lt", check.lt, operator.lt),
    ]
    for op, bound, test in bounds:
        if op in given and bound is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"{where}: expected a number, got {_short(value)}"
            if not test(value, bound):
                return f"{where}: expected {op} {bound:g}, got {value}"
    return None


def _same(value: Any, expected: Any) -> bool:
    # Templated expectations are strings ("{{ code }}"); answers may carry numbers.
    if isinstance(expected, str) and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value) == expected
    return bool(value == expected)


def _contains(value: Any, item: Any) -> bool:
    if isinstance(value, str):
        return isinstance(item, str) and item in value
    if isinstance(value, list):
        return any(_same(v, item) for v in value)
    if isinstance(value, dict):
        return item in value
    return False


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is not _MISSING else "(missing)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _excerpt(body: str, limit: int = 300) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
