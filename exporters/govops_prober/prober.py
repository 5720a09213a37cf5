"""Running a module's checks against one province, concurrently, within a deadline.

One event loop in one thread serves every scrape: the HTTP server's threads hand it a probe
and wait for the result. Each check runs under its own timeout, and the probe as a whole
under the scrape's, so a province whose systems never answer costs exactly the timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .checks import MODULES, Check, Context, Findings, TargetState, enabled
from .client import ProbeFailure, Session, tls_context
from .config import ProberConfig
from .ledger import Ledger

log = logging.getLogger("govops_prober")
# Time kept back from the deadline for building and sending the answer.
ANSWER_MARGIN_SECONDS = 0.05


@dataclass(frozen=True)
class CheckResult:
    name: str
    system: str
    ok: bool
    duration: float
    detail: str


@dataclass
class ProbeResult:
    province: str
    module: str
    checks: list[CheckResult] = field(default_factory=list)
    findings: Findings = field(default_factory=Findings)
    commune_last_success: dict[str, float] = field(default_factory=dict)
    commune_period: float = 0.0
    completed: bool = False  # every check reached a verdict of its own (no prober error)
    duration: float = 0.0
    requests: int = 0


class Prober:
    def __init__(self, config: ProberConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.origins = config.origins()
        self.ssl_context = tls_context(config.ca_file)
        self.states: dict[str, TargetState] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="govops-prober-loop", daemon=True
        )
        self.thread.start()
        self.limit = asyncio.Semaphore(config.max_concurrency)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()

    def run(self, province: str, module: str, timeout: float) -> ProbeResult:
        """Probe synchronously (for a collector); returns by `timeout` whatever the targets do."""
        started = time.perf_counter()
        future = asyncio.run_coroutine_threadsafe(self.probe(province, module, timeout), self.loop)
        try:
            # The coroutine bounds itself; this wait is the belt to its braces.
            return future.result(timeout + 1.0)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.error("probe %s/%s overran its deadline of %.1fs", province, module, timeout)
            return ProbeResult(province, module, duration=time.perf_counter() - started)

    def state(self, province: str) -> TargetState:
        state = self.states.get(province)
        if state is None:
            target = self.config.provinces[province]
            path = (
                Path(self.config.state_dir) / f"{province}.json" if self.config.state_dir else None
            )
            state = TargetState(Ledger.open(target.communes, path))
            self.states[province] = state
        return state

    async def probe(self, province: str, module: str, timeout: float) -> ProbeResult:
        started = time.perf_counter()
        deadline = started + max(timeout - ANSWER_MARGIN_SECONDS, 0.01)
        target = self.config.provinces[province]
        checks = enabled(MODULES[module], self.config)
        result = ProbeResult(province, module)
        state = self.state(province)
        own_limit = asyncio.Semaphore(self.config.max_concurrency_per_target)
        async with Session(self.ssl_context, self.origins, (self.limit, own_limit)) as session:
            ctx = Context(target, self.config, session, state, result.findings, self.clock)
            outcomes = await asyncio.gather(*(self._one(c, ctx, deadline) for c in checks))
            result.requests = session.requests
        result.checks = [r for r, _ in outcomes]
        result.completed = all(clean for _, clean in outcomes)
        if any(c.name == "dossier_submit" for c in checks):
            result.commune_last_success = {c: state.ledger.last_success(c) for c in target.communes}
            result.commune_period = self.config.commune_period_seconds
        result.duration = time.perf_counter() - started
        return result

    async def _one(self, check: Check, ctx: Context, deadline: float) -> tuple[CheckResult, bool]:
        started = time.perf_counter()
        budget = min(self.config.check_timeout_seconds, deadline - started)
        clean = True
        try:
            async with asyncio.timeout(budget):
                detail = await check.run(ctx)
            ok = True
        except ProbeFailure as exc:
            ok, detail = False, str(exc)
        except TimeoutError:
            ok, detail = False, f"no complete answer within {budget:.1f}s"
        except Exception as exc:  # a prober bug: the check failed, and so did govops_up
            ok, detail, clean = False, f"prober error: {type(exc).__name__}: {exc}", False
            log.exception("check %s of %s crashed", check.name, ctx.target.codename)
        took = time.perf_counter() - started
        if not ok:
            log.warning(
                "probe failed: province=%s system=%s check=%s after %.2fs: %s",
                ctx.target.codename,
                check.system,
                check.name,
                took,
                detail,
            )
        return CheckResult(check.name, check.system, ok, took, detail), clean
