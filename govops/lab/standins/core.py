"""The stand-ins' base: errors, validation, time, ids, structured logs.

It imports nothing of the stand-ins: configuration, stores, the HTTP shell and the kinds all
build on it, never the other way round.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
from datetime import UTC, datetime
from typing import IO, Any

# A report whose indicators hold this one is synthetic (the prober's): it may be withdrawn.
SYNTHETIC_INDICATOR = "govops_synthetic_probe"
# A document (and its Axis message) whose subject starts so is synthetic: it may be withdrawn.
SYNTHETIC_SUBJECT = "govops synthetic probe"
NOTICE = "STAND-IN, not the vendor system"
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width: text order is time order

PROVINCE_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
COMMUNE_CODE = re.compile(r"^[0-9]{5}$")
AGENCY_CODE = re.compile(r"^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[0-9A-Z]{3}$")


class HTTPError(Exception):
    """An answer other than success; rendered as {"error": code, "detail": ...}."""

    def __init__(self, status: int, error: str, detail: str = "", **extra: Any) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail, self.extra = status, error, detail, extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error}
        if self.detail:
            out["detail"] = self.detail
        out.update(self.extra)
        return out


class DatabaseUnavailable(Exception):
    """The state store cannot be reached (answered as 503)."""


class UpstreamUnavailable(Exception):
    """A counterpart cannot be reached (answered as 502)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason = url, reason


def now_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime(TS_FORMAT)


def parse_iso(value: str) -> float:
    return datetime.strptime(value, TS_FORMAT).replace(tzinfo=UTC).timestamp()


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def text(
    body: dict[str, Any],
    key: str,
    *,
    required: bool = True,
    max_len: int = 200,
    pattern: re.Pattern[str] | None = None,
) -> str | None:
    """A string field of a JSON body, or 400 naming the key."""
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise HTTPError(400, "invalid_request", f"{key}: required")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise HTTPError(400, "invalid_request", f"{key}: a string of at most {max_len} chars")
    if pattern is not None and not pattern.match(value):
        raise HTTPError(400, "invalid_request", f"{key}: must match {pattern.pattern}")
    return value


def need(body: dict[str, Any], key: str, **kw: Any) -> str:
    value = text(body, key, required=True, **kw)
    assert value is not None
    return value


def province_param(value: str) -> str:
    if not PROVINCE_CODE.match(value):
        raise HTTPError(400, "invalid_request", f"province: must match {PROVINCE_CODE.pattern}")
    return value


class Logger:
    """One JSON object a line on stdout (journald keeps them); never given secrets."""

    def __init__(self, stream: IO[str] | None = None, **context: Any) -> None:
        self.stream, self.lock = stream, threading.Lock()
        self.context = {k: v for k, v in context.items() if v is not None}

    def __call__(self, event: str, level: str = "info", **fields: Any) -> None:
        record = {"ts": now_iso(), "level": level, "event": event, **self.context, **fields}
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self.lock:
            stream = self.stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()
