"""Readiness counted from evidence: what Prometheus and the prober observed, per province,
beside what the runbook's steps reported — and where the two disagree.

Each readiness check of the catalog may carry an `evidence:` PromQL giving one series per
province (label `province`), above zero where the check was observed done. `$window` in it
is the time since the run started (`max_over_time(…[$window])`: observed at least once during
the run) and `$start` the run's start as Unix time. A check without `evidence:` has none.

Prometheus unreachable is not an error of the report: the evidence is then "unavailable" and
the report says so (the step-reported figures are still shown).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from govops.redact import redact_text
from govops.registry import catalog
from govops.runbook.store import ReadinessProgress

# One instant query: PromQL → [(labels, value)]; raises EvidenceUnavailable.
Query = Callable[[str], list[tuple[dict[str, str], float]]]
MIN_WINDOW = 300  # a run younger than a few scrapes still looks back that far


class EvidenceUnavailable(Exception):
    """Prometheus could not be asked (unreachable, refused, not a Prometheus answer)."""


@dataclass(frozen=True)
class CheckEvidence:
    check_id: str
    query: str | None  # as sent; None: the check has no evidence defined
    observed: tuple[str, ...] = ()  # provinces where it was observed done
    error: str = ""  # the query failed (the others may still have answered)

    @property
    def defined(self) -> bool:
        return self.query is not None

    @property
    def known(self) -> bool:
        return self.query is not None and not self.error


@dataclass(frozen=True)
class Disagreement:
    check_id: str
    province: str
    reported: bool  # the runbook's steps said done
    observed: bool  # Prometheus / the prober saw it done

    @property
    def text(self) -> str:
        if self.reported:
            return "the steps reported it done; not observed"
        return "observed done; the steps did not report it"


@dataclass(frozen=True)
class Evidence:
    available: bool
    reason: str = ""  # why unavailable
    source: str = ""  # the Prometheus asked (credentials redacted)
    checks: Mapping[str, CheckEvidence] = field(default_factory=dict)


def window_of(seconds: float) -> str:
    return f"{max(MIN_WINDOW, math.ceil(seconds))}s"


def expand(expr: str, start: float, now: float) -> str:
    return expr.replace("$window", window_of(now - start)).replace("$start", f"{start:.0f}")


def gather(
    provinces: Sequence[str], query: Query | None, start: float, now: float, source: str = ""
) -> Evidence:
    """Ask each check's evidence query; the provinces observed done among the run's."""
    if query is None:
        return Evidence(False, "no Prometheus configured", source)
    wanted = set(provinces)
    checks: dict[str, CheckEvidence] = {}
    failures: list[str] = []
    for check_id, check in catalog().checks.items():
        if not check.evidence:
            checks[check_id] = CheckEvidence(check_id, None)
            continue
        expr = expand(check.evidence, start, now)
        try:
            series = query(expr)
        except EvidenceUnavailable as exc:
            failures.append(str(exc))
            checks[check_id] = CheckEvidence(check_id, expr, (), str(exc))
            continue
        seen = {
            labels.get("province", "")
            for labels, value in series
            if not math.isnan(value) and value > 0
        }
        observed = tuple(p for p in provinces if p in seen and p in wanted)
        checks[check_id] = CheckEvidence(check_id, expr, observed)
    asked = [c for c in checks.values() if c.defined]
    if asked and len(failures) == len(asked):  # nothing answered: Prometheus is down
        return Evidence(False, failures[0], source, checks)
    return Evidence(True, "", source, checks)


def compare(
    readiness: Sequence[ReadinessProgress], evidence: Evidence, provinces: Sequence[str]
) -> list[Disagreement]:
    """Per check run by the runbook and observable, per province: reported ≠ observed."""
    if not evidence.available:
        return []
    found: list[Disagreement] = []
    for r in readiness:
        seen = evidence.checks.get(r.check_id)
        if not r.in_runbook or seen is None or not seen.known:
            continue
        reported, observed = set(r.provinces_done), set(seen.observed)
        for p in provinces:
            if (p in reported) != (p in observed):
                found.append(Disagreement(r.check_id, p, p in reported, p in observed))
    return found


def prometheus_query(
    base_url: str, opener: urllib.request.OpenerDirector, authorization: str | None = None
) -> Query:
    """An instant-query function on `base_url` (the run's Prometheus)."""
    shown = redact_text(base_url)

    def ask(expr: str) -> list[tuple[dict[str, str], float]]:
        url = f"{base_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if authorization:
            request.add_unredirected_header("Authorization", authorization)
        try:
            with opener.open(request, timeout=10) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise EvidenceUnavailable(f"Prometheus at {shown} answered {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EvidenceUnavailable(
                f"Prometheus at {shown} unreachable ({redact_text(str(reason))})"
            ) from None
        try:
            result = body["data"]["result"]
            return [(dict(s["metric"]), float(s["value"][1])) for s in result]
        except (KeyError, TypeError, ValueError, IndexError):
            raise EvidenceUnavailable(f"{shown}: not an instant-vector answer") from None

    return ask
