"""The synthetic transactions, each named by what a citizen or an official does.

Each check is one transaction through a province's front door (the same nginx citizens and
officials use), made of operations (govops/registry/data/operations.yml) that the estate's
adapters turn into requests (config.operations; the lab stand-ins' adapter follows
docs/standins-contract.md). A check returns a short note on success and raises ProbeFailure
with a one-line reason otherwise; the caller times it and bounds it. What a check creates is
marked synthetic (procedure code, applicant, subject) so that the systems' owners can filter
it out of their statistics, and the dossiers it submits are withdrawn at once (`withdraw`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .client import ProbeFailure, Reply, Session, origin_of
from .config import SYSTEMS, ProberConfig, ProvinceTarget
from .cutover import (
    SYNTHETIC_APPLICANT,
    legacy_portal_redirect,
    official_operation,
    portal_dossier_routed,
)
from .ledger import Ledger
from .operations import Operation

PROBE_SUBJECT = "govops synthetic probe (monitoring; please ignore)"


@dataclass
class TargetState:
    """What the prober remembers about one province between scrapes."""

    ledger: Ledger
    meeting_id: str | None = None
    next_bridge: int = 0


@dataclass
class Findings:
    """Samples beyond success and duration that some checks measure."""

    sync_lag_seconds: float | None = None
    communes_attempted: int = 0
    communes_failed: int = 0
    commune_results: dict[str, bool] = field(default_factory=dict)
    # old code → whether its old portal domain answered 301 to the national portal
    legacy_portals: dict[str, bool] = field(default_factory=dict)
    # system → 1 while it runs in trial operation, 0 in official operation
    trial_mode: dict[str, bool] = field(default_factory=dict)


@dataclass
class Context:
    target: ProvinceTarget
    config: ProberConfig
    session: Session
    state: TargetState
    findings: Findings
    now: Callable[[], float] = time.time

    def url(self, system: str, path: str) -> str:
        return self.target.systems[system] + path

    def base(self, kind: str, name: str) -> str:
        if kind == "systems":
            return self.target.systems[name]
        base = self.config.counterparts.get(name)
        if base is None:
            raise ProbeFailure(f"counterpart {name} is not configured for the prober")
        return base

    def operation(self, kind: str, name: str, operation: str) -> Operation:
        found = self.config.operations.get(f"{kind}.{name}", {}).get(operation)
        if found is None:
            raise ProbeFailure(f"{name}.{operation}: not implemented by the estate's adapter")
        return found

    def resolve(
        self, kind: str, name: str, operation: str, /, **inputs: Any
    ) -> tuple[str, str, Any]:
        """Method, URL and body of an operation through the adapter."""
        return self.operation(kind, name, operation).request(self.base(kind, name), inputs)

    async def send(self, kind: str, name: str, operation: str, /, **inputs: Any) -> Reply:
        method, url, body = self.resolve(kind, name, operation, **inputs)
        return await self.session.request(method, url, json_body=body)

    async def call(
        self, kind: str, name: str, operation: str, doing: str, /, **inputs: Any
    ) -> dict[str, Any]:
        """The operation's result fields, or ProbeFailure naming what was being done."""
        op = self.operation(kind, name, operation)
        reply = await self.send(kind, name, operation, **inputs)
        return op.result_of(_expect(reply, op.expect_status, doing))


CheckFn = Callable[[Context], Awaitable[str]]


@dataclass(frozen=True)
class Check:
    name: str
    system: str
    run: CheckFn
    what: str  # the transaction, as the person doing it would say it


def _expect(reply: Reply, statuses: tuple[int, ...], doing: str) -> dict[str, Any]:
    if reply.status not in statuses:
        data = reply.json()
        error = data.get("error") if isinstance(data, dict) else None
        detail = data.get("detail") if isinstance(data, dict) else None
        why = ": ".join(str(x) for x in (error, detail) if x) or "no JSON error"
        raise ProbeFailure(f"{doing}: HTTP {reply.status} ({why})")
    return reply.object()


# -- procedures -------------------------------------------------------------------------


async def sso_login(ctx: Context) -> str:
    """A citizen signs in on the national portal and lands in the provincial procedures system."""
    _, start, _ = ctx.resolve("systems", "procedures", "sso_login", login_hint="govops-prober")
    reply, hops = await ctx.session.follow(start)
    body = _expect(reply, (200,), f"sign-in via {len(hops) - 1} redirect(s)")
    if body.get("authenticated") is not True:
        raise ProbeFailure("sign-in finished without an authenticated session")
    own = origin_of(ctx.target.systems["procedures"])
    if all(origin_of(h) == own for h in hops):
        raise ProbeFailure("sign-in never went through the national portal")
    return f"signed in as {body.get('subject')} in {len(hops) - 1} redirects"


async def dossier_submit(ctx: Context) -> str:
    """An official submits a dossier in a commune; the communes take turns, all in a period."""
    cfg, ledger, now = ctx.config, ctx.state.ledger, ctx.now()
    size = ledger.batch_size(
        now, cfg.commune_period_seconds, cfg.scrape_interval_seconds, cfg.max_communes_per_scrape
    )
    batch = ledger.next_batch(now, size)
    for commune in batch:  # taken now, so that a concurrent scrape takes the next ones
        ledger.attempted[commune] = now
    failures: dict[str, str] = {}

    async def submit(commune: str) -> None:
        try:
            body = await ctx.call(
                "systems",
                "procedures",
                "submit_dossier",
                f"commune {commune}",
                commune_code=commune,
                procedure_code=cfg.procedure_code,
                applicant=SYNTHETIC_APPLICANT,
            )
            if not body.get("id"):
                raise ProbeFailure(f"commune {commune}: no dossier id in the receipt")
            # The synthetic dossier has proven the commune; it leaves no trace.
            await ctx.call(
                "systems",
                "procedures",
                "withdraw",
                f"commune {commune}: withdraw synthetic dossier {body['id']}",
                kind="dossier",
                id=str(body["id"]),
            )
            ok = True
        except ProbeFailure as exc:
            failures[commune] = str(exc)
            ok = False
        ledger.record(commune, ok, ctx.now())
        ctx.findings.commune_results[commune] = ok

    ctx.findings.communes_attempted = len(batch)
    try:
        async with asyncio.TaskGroup() as group:  # a crash in one cancels the others
            for commune in batch:
                group.create_task(submit(commune))
    finally:
        ctx.findings.communes_failed = len(failures) + (
            len(batch) - len(ctx.findings.commune_results)
        )
        ledger.save()
    if failures:
        first = min(failures)
        raise ProbeFailure(f"{len(failures)} of {len(batch)} communes failed; {failures[first]}")
    return f"{len(batch)} communes accepted a dossier"


async def dossier_sync(ctx: Context) -> str:
    """The province's dossier records reach the national portal (lag measured, errors seen)."""
    status = await ctx.call("systems", "procedures", "sync_status", "sync status")
    lag = status.get("lag_seconds")
    if isinstance(lag, int | float) and not isinstance(lag, bool):
        ctx.findings.sync_lag_seconds = float(lag)
    else:
        raise ProbeFailure("sync status without lag_seconds")
    national = await ctx.call(
        "counterparts",
        "portal",
        "dossier_records_summary",
        "national portal's record summary",
        province=ctx.target.codename,
    )
    if status.get("last_error"):
        raise ProbeFailure(f"last sync to the national portal failed: {status['last_error']}")
    return f"{status.get('pending')} pending, lag {lag}s; portal holds {national.get('count')}"


async def payment(ctx: Context) -> str:
    """A citizen pays a fee online; the national payment platform records the transaction.

    Never a real charge (config.payment_mode): in the platform's test mode, whose answer
    must say so, or as a zero-value authorisation, reversed at once."""
    zero = ctx.config.payment_mode == "zero_authorization"
    request = {"amount": 0, "mode": "authorize"} if zero else {"amount": 1000, "mode": "test"}
    paid = await ctx.call(
        "systems",
        "procedures",
        "test_payment",
        "zero-value authorisation" if zero else "test-mode payment",
        **request,
    )
    tx = paid.get("transaction_id")
    if not isinstance(tx, str) or paid.get("status") != ("authorized" if zero else "paid"):
        raise ProbeFailure(f"payment not confirmed: status {paid.get('status')!r}")
    if not zero and paid.get("test_mode") is not True:
        raise ProbeFailure(f"transaction {tx} was not made in the platform's test mode")
    await ctx.call(
        "counterparts",
        "payment",
        "payment",
        "the payment platform's record of the transaction",
        transaction_id=tx,
    )
    reversed_ = await ctx.call(
        "counterparts",
        "payment",
        "reverse_payment",
        "reverse the synthetic transaction",
        transaction_id=tx,
    )
    if reversed_.get("status") != "reversed":
        raise ProbeFailure(f"transaction {tx} not reversed")
    return f"{'authorised' if zero else 'paid in test mode'} and reversed, transaction {tx}"


async def notification_roundtrip(ctx: Context) -> str:
    """The national portal sends a notification file; the province receives and processes it."""
    note = await ctx.call(
        "counterparts",
        "portal",
        "send_notification",
        "portal notification",
        province=ctx.target.codename,
        subject=PROBE_SUBJECT,
        content="synthetic",
    )
    if note.get("status") != "acknowledged":
        raise ProbeFailure(
            f"notification {note.get('status')}: {note.get('last_error') or 'not acknowledged'}"
        )
    return f"notification {note.get('id')} acknowledged"


# -- documents --------------------------------------------------------------------------


async def axis_roundtrip(ctx: Context) -> str:
    """An agency sends an official document through the Axis; the recipient agency receives it."""
    t = ctx.target
    sent = await ctx.call(
        "systems",
        "documents",
        "send_document",
        f"send {t.agency_from} → {t.agency_to}",
        from_agency=t.agency_from,
        to_agency_code=t.agency_to,
        subject=PROBE_SUBJECT,
        body=f"probe {ctx.now():.0f}",
    )
    message_id = sent.get("axis_message_id")
    inbox = await ctx.call(
        "systems", "documents", "inbox", f"inbox of {t.agency_to}", agency=t.agency_to
    )
    messages = inbox.get("messages")
    if not isinstance(messages, list) or not any(
        isinstance(m, dict) and m.get("axis_message_id") == message_id for m in messages
    ):
        raise ProbeFailure(f"Axis message {message_id} not in the inbox of {t.agency_to}")
    await ctx.call(
        "systems",
        "documents",
        "withdraw",
        f"withdraw synthetic document {sent.get('id')}",
        kind="document",
        id=str(sent.get("id")),
    )
    return f"Axis message {message_id} delivered and withdrawn"


# -- lgsp, reporting, meetings ------------------------------------------------------------


async def gateway_relay(ctx: Context) -> str:
    """A provincial system calls the national data exchange platform through the LGSP."""
    body = await ctx.call("systems", "lgsp", "relay_ndxp", "LGSP relay to NDXP")
    if body.get("pong") is not True:
        raise ProbeFailure("the NDXP answer through the LGSP is not a pong")
    return "relayed to NDXP"


async def report_submit(ctx: Context) -> str:
    """The province submits a report; it is forwarded to the national reporting system."""
    period = time.strftime("%Y-%m", time.gmtime(ctx.now()))
    report = await ctx.call(
        "systems",
        "reporting",
        "submit_report",
        "report submission",
        period=period,
        indicators={"govops_synthetic_probe": 1},
    )
    if report.get("status") != "forwarded":
        raise ProbeFailure(f"report {report.get('status')!r}, not forwarded to national reporting")
    await ctx.call(
        "systems",
        "reporting",
        "withdraw",
        f"withdraw synthetic report {report.get('id')}",
        kind="report",
        id=str(report.get("id")),
    )
    return f"report {report.get('id')} forwarded and withdrawn"


async def meeting_join(ctx: Context) -> str:
    """A commune joins the province's online meeting as a bridge (communes take turns)."""
    state, t = ctx.state, ctx.target
    if state.meeting_id is not None:
        found = await ctx.send("systems", "meetings", "get_meeting", meeting_id=state.meeting_id)
        if found.status != 200:
            state.meeting_id = None  # gone (restored database): schedule a new one
    if state.meeting_id is None:
        created = await ctx.call(
            "systems",
            "meetings",
            "schedule_meeting",
            "schedule the probe meeting",
            title=PROBE_SUBJECT,
            scope="province",
        )
        if not isinstance(created.get("id"), str):
            raise ProbeFailure("meeting scheduled without an id")
        state.meeting_id = str(created["id"])
    commune = t.communes[state.next_bridge % len(t.communes)]
    state.next_bridge += 1
    joined = await ctx.call(
        "systems",
        "meetings",
        "join_meeting",
        f"commune {commune} joins",
        meeting_id=state.meeting_id,
        commune_code=commune,
    )
    if not joined.get("bridge"):
        raise ProbeFailure(f"commune {commune} joined without a bridge")
    return f"commune {commune} joined"


# -- fronts -----------------------------------------------------------------------------


def _front(system: str) -> CheckFn:
    async def front_ready(ctx: Context) -> str:
        path = ctx.config.readiness_paths.get(system, "/readyz")
        reply = await ctx.session.request("GET", ctx.url(system, path))
        if reply.status != 200:
            raise ProbeFailure(f"{system}{path}: HTTP {reply.status}")
        return "ready"

    return front_ready


TRANSACTIONS = (
    Check("sso_login", "procedures", sso_login, "sign in through the national portal"),
    Check("dossier_submit", "procedures", dossier_submit, "submit a dossier in a commune"),
    Check("dossier_sync", "procedures", dossier_sync, "see dossiers reach the national portal"),
    Check("payment", "procedures", payment, "pay a fee online"),
    Check(
        "notification_roundtrip",
        "procedures",
        notification_roundtrip,
        "receive a notification file from the national portal",
    ),
    Check("axis_roundtrip", "documents", axis_roundtrip, "send a document through the Axis"),
    Check("gateway_relay", "lgsp", gateway_relay, "call a national platform through the LGSP"),
    Check("report_submit", "reporting", report_submit, "submit a report to the nation"),
    Check("meeting_join", "meetings", meeting_join, "join the province's meeting from a commune"),
)
# Not in `all`: what the cutover changes (old portals closed, go-live) fails by design before
# its step, so each is a module of its own (cutover.py).
LEGACY_PORTALS = Check(
    "legacy_portal_redirect",
    "procedures",
    legacy_portal_redirect,
    "open an old provincial portal's bookmark and land on the national portal",
)
GO_LIVE = (
    Check(
        "portal_dossier_routed",
        "procedures",
        portal_dossier_routed,
        "submit a dossier on the national portal and see it reach the province's system",
    ),
    Check("official_operation", "procedures", official_operation, "find every system out of trial"),
)
FRONTS = tuple(Check("front_ready", s, _front(s), f"open the {s} front page") for s in SYSTEMS)
# Checks that create records in the systems (each marked synthetic).
WRITES = frozenset(
    {
        "dossier_submit",
        "payment",
        "notification_roundtrip",
        "axis_roundtrip",
        "report_submit",
        "meeting_join",
        "portal_dossier_routed",
    }
)


def enabled(checks: tuple[Check, ...], config: ProberConfig) -> tuple[Check, ...]:
    """What this environment lets the prober run (config.write_checks, payment_mode)."""
    return tuple(
        c
        for c in checks
        if (config.write_checks or c.name not in WRITES)
        and not (c.name == "payment" and config.payment_mode == "off")
    )


# A module is what one scrape runs. `all` is the transactions (blackbox_exporter already
# probes each front); `fronts` is the plain readiness probe, for comparison and bootstrap;
# each transaction is also a module of its own, for scraping it at its own pace.
MODULES: dict[str, tuple[Check, ...]] = {
    "all": TRANSACTIONS,
    "fronts": FRONTS,
    **{c.name: (c,) for c in TRANSACTIONS},
    LEGACY_PORTALS.name: (LEGACY_PORTALS,),
    "go_live": GO_LIVE,
}
