"""The few Prometheus HTTP API calls the board needs (instant queries), with clear errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from govops.errors import GovopsError


class PrometheusError(GovopsError):
    """Prometheus could not be asked, or refused the query (names the URL and the query)."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


def instant(base_url: str, query: str, timeout: float = 10.0) -> list[Sample]:
    url = f"{base_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise PrometheusError(f"{base_url}: query {query!r} refused: {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PrometheusError(f"{base_url}: cannot query Prometheus: {exc}") from exc
    if body.get("status") != "success":
        raise PrometheusError(f"{base_url}: query {query!r} failed: {body.get('error')}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return [Sample({}, float(data["result"][1]))]
    return [Sample(dict(r["metric"]), float(r["value"][1])) for r in data["result"]]
