"""Planned work pages nobody: a step that drains, restarts or switches something declares
`silence:` (label → value matchers), and the engine opens an Alertmanager silence (API v2)
scoped to them for the step's expected duration, records it in the audit log, and expires it
when the step ends, rolls back, or is settled after a crash.

- The silence is keyed by run, province and step (a tag in its comment, `[govops RUN/P/STEP]`;
  `…/rollback` while the step rolls back): a resumed step finds the one it opened before the
  crash and reuses it instead of opening a second; settling expires every silence of the key.
- It never covers the cutover's own alerts (they carry a `step` label: a matcher `step=""`
  is added), so a failed or late step still pages while its systems are silenced.
- It lasts the step's expected duration (the time clear's `expected`, else its timeout) plus a
  margin of as much again, at least 5 minutes: an overrunning step pages; a silence left by a
  crashed engine ends on its own.
- Alertmanager refusing or unreachable when a step opens its silence: the step fails as an
  unmet precondition would (planned work does not start unannounced); no `alertmanager_url`
  at all: a notice in the audit log and the step runs. Expiring that fails is a notice (the
  silence ends by itself at its end time). A rollback runs even when its silence cannot open.

Credentials, as Prometheus's: GOVOPS_ALERTMANAGER_TOKEN[_FILE] or GOVOPS_ALERTMANAGER_USER
with GOVOPS_ALERTMANAGER_PASSWORD[_FILE]; never stored nor printed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from govops.errors import InputError
from govops.redact import redact_text
from govops.runbook.executors.base import ExecutorError, RunSettings
from govops.runbook.executors.promql import authorization
from govops.runbook.executors.transport import opener
from govops.runbook.model import Step
from govops.runbook.recording import EngineBase, Event
from govops.runbook.state import Batch
from govops.runbook.templating import TemplateError, render_value

AUTH_ENV = "GOVOPS_ALERTMANAGER_"
MIN_MARGIN = 300.0  # seconds
CREATED_BY = "govops cutover"
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


class SilenceError(ExecutorError):
    """Alertmanager did not do what was asked; the message says what it answered."""


def matchers(spec: Mapping[str, str]) -> list[dict[str, Any]]:
    """Alertmanager v2 matchers from a step's rendered `silence:`; `step=""` added (never the
    cutover's own alerts)."""
    found = [
        {"name": name, "value": value[1:], "isRegex": True, "isEqual": True}
        if value.startswith("~")
        else {"name": name, "value": value, "isRegex": False, "isEqual": True}
        for name, value in spec.items()
    ]
    if "step" not in spec:
        found.append({"name": "step", "value": "", "isRegex": False, "isEqual": True})
    return found


def describe(found: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{m['name']}{'=~' if m['isRegex'] else '='}{json.dumps(m['value'])}" for m in found
    )


def window(step: Step) -> float:
    """How long a step's silence lasts: expected duration plus as much again (≥ 5 min)."""
    return step.expected + max(MIN_MARGIN, step.expected)


def tag(key: str) -> str:
    return f"[govops {key}]"


class Alertmanager:
    """The few calls of Alertmanager's API v2 a silence needs."""

    def __init__(self, url: str, settings: RunSettings, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.shown = redact_text(self.url)
        self.settings = settings
        self.timeout = timeout

    def _call(self, method: str, path: str, body: object = None) -> Any:
        try:
            auth = authorization(AUTH_ENV)
        except InputError as exc:
            raise SilenceError(f"Alertmanager credentials: {exc}") from None
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
        )
        if auth is not None:
            request.add_unredirected_header("Authorization", auth)
        try:
            with opener(self.settings).open(request, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace").strip()
            if exc.code in (401, 403):
                detail = "credentials refused" if auth else f"no credentials given ({AUTH_ENV}…)"
            raise SilenceError(
                f"Alertmanager at {self.shown} answered {exc.code} to {method} {path}: "
                + redact_text(detail)
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SilenceError(
                f"Alertmanager at {self.shown} unreachable: {redact_text(str(exc))}"
            ) from None
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise SilenceError(f"Alertmanager at {self.shown}: not a JSON answer") from None

    def silences(self) -> list[dict[str, Any]]:
        found = self._call("GET", "/api/v2/silences")
        if not isinstance(found, list):
            raise SilenceError(f"Alertmanager at {self.shown}: silences are not a list")
        return [s for s in found if isinstance(s, dict)]

    def active(self, key: str) -> list[dict[str, Any]]:
        """The active (or pending) silences of `key` and of its sub-keys (`key/…`)."""
        mine = tag(key)
        prefix = mine[:-1] + "/"
        return [
            s
            for s in self.silences()
            if (s.get("status") or {}).get("state") in ("active", "pending")
            and (mine in str(s.get("comment", "")) or prefix in str(s.get("comment", "")))
        ]

    def open(
        self, key: str, found: list[dict[str, Any]], seconds: float, why: str
    ) -> tuple[str, datetime, bool]:
        """The silence of `key`: the active one (reused: a resumed step), else a new one.
        Returns its id, its end, and whether it was reused."""
        for s in self.active(key):
            if tag(key) in str(s.get("comment", "")):
                ends = datetime.fromisoformat(str(s["endsAt"]).replace("Z", "+00:00"))
                return str(s["id"]), ends, True
        now = datetime.now(UTC)
        ends = now + timedelta(seconds=seconds)
        answer = self._call(
            "POST",
            "/api/v2/silences",
            {
                "matchers": found,
                "startsAt": now.isoformat(),
                "endsAt": ends.isoformat(),
                "createdBy": CREATED_BY,
                "comment": f"planned work: {why} {tag(key)}",
            },
        )
        if not isinstance(answer, dict) or not answer.get("silenceID"):
            raise SilenceError(f"Alertmanager at {self.shown}: no silenceID in its answer")
        return str(answer["silenceID"]), ends, False

    def expire(self, key: str) -> list[str]:
        """Expire every active silence of `key` (and its sub-keys); their ids."""
        ids = [str(s["id"]) for s in self.active(key)]
        for silence_id in ids:
            self._call("DELETE", f"/api/v2/silence/{urllib.parse.quote(silence_id)}")
        return ids


def _local(moment: datetime) -> str:
    return moment.astimezone(VIETNAM).strftime("%H:%M:%S +07:00")


class Silencing(EngineBase):
    """The engine's side: open a step's silence before its action, expire it after."""

    def _alertmanager(self) -> Alertmanager | None:
        url = self.settings.alertmanager_url
        return Alertmanager(url, self.settings) if url else None

    def _silence_key(self, province: str, step: Step, rollback: bool) -> str:
        return self._key(province, step.id, "") + ("/rollback" if rollback else "")

    def _open_silence(self, province: str, step: Step, *, rollback: bool = False) -> str | None:
        """Open (or find again) the step's silence; a problem's message, or None."""
        if step.silence is None:
            return None
        am = self._alertmanager()
        if am is None:
            detail = "no alertmanager_url set: the planned work is not silenced"
            self._silence_audit("silence.open", province, step, "not silenced", detail)
            self.observe(Event("notice", province, step.id, message=detail))
            return None
        try:
            spec = render_value(dict(step.silence), self.contexts[province])
            found = matchers({str(k): str(v) for k, v in spec.items()})
            what = ("rolling back " if rollback else "") + f"{step.id} in {province}"
            sid, ends, reused = am.open(
                self._silence_key(province, step, rollback), found, window(step), what
            )
        except (TemplateError, SilenceError) as exc:
            problem = f"silence: {exc}"
            self._silence_audit("silence.open", province, step, "failed", problem)
            return problem
        detail = f"silence {sid} ({describe(found)}) until {_local(ends)}"
        self._silence_audit(
            "silence.open", province, step, "reused" if reused else "opened", detail
        )
        return None

    def _close_silence(self, province: str, step: Step) -> None:
        """Expire the step's silences (its own and its rollback's); a failure is a notice."""
        if step.silence is None:
            return
        am = self._alertmanager()
        if am is None:
            return
        try:
            ids = am.expire(self._silence_key(province, step, False))
        except SilenceError as exc:
            detail = f"{exc}; the silence ends by itself at its end time"
            self._silence_audit("silence.expire", province, step, "failed", detail)
            self.observe(Event("notice", province, step.id, message=f"silence: {detail}"))
            return
        if ids:
            self._silence_audit("silence.expire", province, step, "expired", ", ".join(ids))

    def _silence_audit(
        self, action: str, province: str, step: Step, result: str, detail: str
    ) -> None:
        entry = self._entry(action, province, step.id, result=result, detail=detail)
        self.recorder.write(Batch(audit=[entry]))
