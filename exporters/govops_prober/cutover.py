"""Checks of what the cutover changes: the old provinces' portals closed (301 to the national
portal) and go-live (the national portal routes a commune's dossier to the province's system;
every system out of trial operation). Each fails by design before its cutover step, so each
is a module of its own, never in `all` (checks.MODULES)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from .client import ProbeFailure, Session, origin_of
from .config import ProberConfig, ProvinceTarget


class Context(Protocol):
    """What these checks use of checks.Context (which imports this module: no circle)."""

    target: ProvinceTarget
    config: ProberConfig
    session: Session
    findings: Any

    def url(self, system: str, path: str) -> str: ...

    async def call(
        self, kind: str, name: str, operation: str, doing: str, /, **inputs: Any
    ) -> dict[str, Any]: ...


# What the prober creates is marked so (checks.py uses it too; it lives here, below checks).
SYNTHETIC_APPLICANT = {"name": "govops synthetic probe", "synthetic": True}


async def legacy_portal_redirect(ctx: Context) -> str:
    """A citizen opens an old provincial portal's bookmark and is sent to the national portal:
    each old domain, asked through the province's procedures front (the old name in Host, the
    front's certificate checked), answers 301 with the national portal's home as Location."""
    expected = ctx.config.legacy_portal_location
    portals = ctx.target.legacy_portals
    if not portals or not expected:
        raise ProbeFailure("no old portal domains or national Location configured")

    async def one(code: str, domain: str) -> str | None:
        try:
            reply = await ctx.session.request(
                "GET", ctx.url("procedures", "/"), headers={"Host": domain}
            )
        except ProbeFailure as exc:
            ctx.findings.legacy_portals[code] = False
            return f"{domain}: {exc}"
        location = reply.headers.get("Location", "")
        ok = reply.status == 301 and location == expected
        ctx.findings.legacy_portals[code] = ok
        return None if ok else f"{domain}: HTTP {reply.status} Location {location or '-'}"

    problems = [
        p for p in await asyncio.gather(*(one(c, d) for c, d in sorted(portals.items()))) if p
    ]
    if problems:
        raise ProbeFailure(f"{len(problems)}/{len(portals)} not redirected: {'; '.join(problems)}")
    return f"{len(portals)} old portal(s) redirect to the national portal"


async def portal_dossier_routed(ctx: Context) -> str:
    """A citizen submits a dossier on the national portal for one of the province's communes;
    the portal's register sends it to the province's procedures system, where it is found (and
    withdrawn: synthetic)."""
    commune = ctx.target.communes[0]
    body = await ctx.call(
        "counterparts",
        "portal",
        "submit_dossier",
        f"national portal dossier for commune {commune}",
        commune_code=commune,
        procedure_code=ctx.config.procedure_code,
        applicant=SYNTHETIC_APPLICANT,
    )
    routed = str(body.get("routed_to") or "")
    want = origin_of(ctx.target.systems["procedures"])
    if body.get("province") != ctx.target.codename or origin_of(routed) != want:
        raise ProbeFailure(
            f"commune {commune}: routed to {body.get('province')} at {routed or '-'}, not {want}"
        )
    # Found where the portal says: the province's own system withdraws it (404 otherwise).
    await ctx.call(
        "systems",
        "procedures",
        "withdraw",
        f"withdraw the portal's dossier {body.get('id')} from the province's system",
        kind="dossier",
        id=str(body.get("id")),
    )
    return f"commune {commune}: the portal's dossier reached {want}"


async def official_operation(ctx: Context) -> str:
    """Every system of the province says it runs in official operation (not trial)."""

    async def one(system: str) -> None:
        mode = await ctx.call("systems", system, "operation_mode", f"{system} operation mode")
        ctx.findings.trial_mode[system] = mode.get("mode") != "official"

    await asyncio.gather(*(one(s) for s in sorted(ctx.target.systems)))
    trial = sorted(s for s, t in ctx.findings.trial_mode.items() if t)
    if trial:
        raise ProbeFailure(f"still in trial operation: {', '.join(trial)}")
    return f"{len(ctx.findings.trial_mode)} systems in official operation"
