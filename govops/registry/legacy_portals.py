"""The old provincial public-service portals: their domains and where their paths go.

One function names "the old portal domain of old province X" (`legacy_portal_domain`), for
everything that serves or resolves those names (the nginx role, the lab's DNS, the prober).
`national_target` is the path mapping the nginx role implements (`roles/legacy_portals`): the
unit tests pin its rules and the real-nginx test checks nginx answers the same.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from govops.registry.geography import LegacyProvince, legacy_provinces, merged_from
from govops.yamlio import load_yaml, validate

# What may follow a prefix and still go along as a parameter: one code, nothing that needs
# escaping in a URL or a header (the nginx role's regex is the same).
REST_CODE = r"[A-Za-z0-9._~-]{1,64}"
_PATH = r"^/[A-Za-z0-9._~/-]*$"


class PathRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match: Literal["exact", "prefix"]
    from_: str = Field(alias="from", pattern=_PATH, max_length=200)
    to: str = Field(pattern=_PATH, max_length=200)
    rest_param: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,40}$")
    query: Literal["keep", "drop"]

    @model_validator(mode="after")
    def _shape(self) -> PathRule:
        if self.match == "prefix" and not self.from_.endswith("/"):
            raise ValueError("a prefix ends with '/' (a segment boundary)")
        if self.rest_param and self.match != "prefix":
            raise ValueError("rest_param only on a prefix")
        if self.rest_param and self.query == "keep":
            raise ValueError("rest_param and query: keep together would need two '?'")
        return self


class LegacyPortals(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str = Field(pattern=r"^[a-z0-9.-]*\{slug\}[a-z0-9.-]*$")
    unknown: str = Field(pattern=_PATH)
    paths: tuple[PathRule, ...]

    @model_validator(mode="after")
    def _unique(self) -> LegacyPortals:
        seen = [(r.match, r.from_) for r in self.paths]
        if len(seen) != len(set(seen)):
            raise ValueError("an old path is listed twice")
        return self


DATA = Path(str(resources.files("govops.registry").joinpath("data/legacy-portals.yml")))


@cache
def legacy_portals(path: Path = DATA) -> LegacyPortals:
    data, lines = load_yaml(path)
    return validate(LegacyPortals, data, path, lines)


def slug(old_name: str) -> str:
    """`Thành phố Hồ Chí Minh` → `hochiminh`, `Bà Rịa - Vũng Tàu` → `bariavungtau`."""
    name = old_name.removeprefix("Thành phố ").replace("Đ", "D").replace("đ", "d")
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_.lower())


def _old(old: LegacyProvince | str) -> LegacyProvince:
    if isinstance(old, LegacyProvince):
        return old
    found = [lp for lp in legacy_provinces() if old in (lp.old_code, lp.old_name)]
    if not found:
        raise KeyError(f"no old province with code or name {old!r}")
    return found[0]


def legacy_portal_domain(old: LegacyProvince | str) -> str:
    """The public-service portal domain of old province `old` (a LegacyProvince, its two-digit
    code or its name): `dichvucong.hagiang.gov.vn`."""
    return legacy_portals().domain.replace("{slug}", slug(_old(old).old_name))


def legacy_portal_domains(new_codename: str) -> dict[str, str]:
    """Old code → old portal domain, for the old provinces merged into `new_codename`."""
    return {lp.old_code: legacy_portal_domain(lp) for lp in merged_from(new_codename)}


def _rest_ok(rest: str) -> bool:
    return re.fullmatch(REST_CODE, rest) is not None


def national_target(raw_target: str) -> str:
    """Where an old portal's request target (raw path and query, as on the request line) is sent
    on the national portal: a path and maybe a query, to put after the portal's base URL."""
    cfg = legacy_portals()
    path, sep, query = raw_target.partition("?")
    rule = next((r for r in cfg.paths if r.match == "exact" and r.from_ == path), None)
    if rule is None:
        prefixes = [r for r in cfg.paths if r.match == "prefix" and path.startswith(r.from_)]
        rule = max(prefixes, key=lambda r: len(r.from_), default=None)
    if rule is None:
        return cfg.unknown
    target = rule.to
    if rule.match == "prefix" and rule.rest_param:
        rest = path[len(rule.from_) :]
        if _rest_ok(rest):
            target += f"?{rule.rest_param}={rest}"
    if rule.query == "keep" and sep:
        target += f"?{query}"
    return target


def nginx_rules() -> dict[str, Any]:
    """The mapping as the nginx role's template takes it: exact paths, then prefixes longest
    first (nginx tries regexes in order), with the regex of a prefix's code."""
    cfg = legacy_portals()
    exact = [
        {"from": r.from_, "to": r.to, "query": r.query} for r in cfg.paths if r.match == "exact"
    ]
    prefix = [
        {
            "regex": "^" + re.escape(r.from_),
            "to": r.to,
            "rest_param": r.rest_param or "",
            "query": r.query,
        }
        for r in sorted(
            (r for r in cfg.paths if r.match == "prefix"), key=lambda r: (-len(r.from_), r.from_)
        )
    ]
    return {"exact": exact, "prefix": prefix, "rest_code": REST_CODE, "unknown": cfg.unknown}
