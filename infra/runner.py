"""Run one stack's program under Pulumi's mocks, the way `pulumi up` would run it.

`run_stack` sets the stack's config, runs `infra.estate.program.run` (the same entry point
as `pulumi up`) and returns what it registered and exported. `fast_mocks()` makes many such
runs cheap; see its docstring for what it changes and why each change is safe under mocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.log
import pulumi.runtime
from pulumi.runtime import resource as _sdk_resource
from pulumi.runtime import rpc as _sdk_rpc
from pulumi.runtime.proto import source_pb2

from infra.estate.program import run
from infra.mocks import EstateMocks, Registration, run_mocked

PROJECT = "govops"


@dataclass(frozen=True)
class StackRun:
    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any]


def run_stack(
    stack: str,
    config: Mapping[str, Any],
    stack_outputs: Mapping[str, Mapping[str, Any]],
    secret_keys: tuple[str, ...] = (),
) -> StackRun:
    """`config` is the stack file's `config:` mapping; `stack_outputs` answers its
    StackReferences (platform stack name → outputs)."""
    # The engine hands the program every value as a string, objects as JSON: do the same.
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
        list(secret_keys),
    )
    # The SDK's mocks create futures on the thread's current loop; an earlier asyncio.run() in
    # the same process (any library's) leaves the main thread with none, so make one if so.
    current = _current_loop()
    if current is None or current.is_closed():
        asyncio.set_event_loop(asyncio.new_event_loop())
    registrations, outputs = run_mocked(run, EstateMocks(stack_outputs), PROJECT, stack)
    return StackRun(stack, registrations, outputs)


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each job at once on the calling thread: the mock monitor answers synchronously,
    so the SDK's hop to a worker thread per resource is pure overhead (and leaves no threads
    behind to make forking worker processes unsafe)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting coroutine
            future.set_exception(exc)
        return future


@contextmanager
def fast_mocks() -> Iterator[None]:
    """Make mocked runs several times cheaper; everything is restored on exit.

    Measured on the 34 provinces (3,700 resources, CPU seconds): stock 13.3; without the
    cyclic GC 7.7 (the SDK makes ~15 futures per resource and gen-2 passes rescan them all);
    without source positions 5.9 (a full `traceback.extract_stack` per resource, which only
    the engine's diagnostics use); inline executor 5.3; one future per output property 4.7;
    no debug log records 4.4. The SDK functions replaced are private, so each replacement is
    applied only if the function is there, and a unit test checks that runs with and without
    this context register exactly the same resources.
    """
    saved: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, value: object) -> None:
        if hasattr(owner, name):
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, value)

    patch(_sdk_resource, "_get_stack_trace", source_pb2.StackTrace)
    patch(_sdk_rpc, "transfer_properties", _transfer_properties)
    patch(pulumi.log, "debug", _no_debug)
    previous_loop = _current_loop()
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_InlineExecutor())
    asyncio.set_event_loop(loop)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc_was_enabled:
            gc.enable()
        loop.close()
        asyncio.set_event_loop(previous_loop)
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


def _current_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        return None


def _no_debug(*args: object, **kwargs: object) -> None:
    """Debug records go to the mock engine's logger, which nobody reads in a plan."""


def _transfer_properties(res: Any, props: Any, custom: bool) -> dict[str, Any]:
    """The SDK's `rpc.transfer_properties` with one future per property instead of four
    futures and a task: each resolver fills the Output's data in one step, with the same
    value, knownness, secrecy and dependencies (the resource itself included)."""
    from pulumi.output import Output, _OutputData

    loop = asyncio.get_event_loop()
    resolvers: dict[str, Any] = {}
    for name in props:
        if name == "urn" or (name == "id" and custom):
            continue  # the SDK resolves these itself
        data: asyncio.Future[Any] = loop.create_future()

        def resolve(
            value: Any,
            is_known: bool,
            is_secret: bool,
            deps: Any,
            failed: Exception | None,
            data: asyncio.Future[Any] = data,
        ) -> None:
            if failed is not None:
                data.set_exception(failed)
                return
            resources = set(deps) if deps else set()
            resources.add(res)
            data.set_result(_OutputData(resources, value, is_known, is_secret))

        resolvers[name] = resolve
        res.__dict__[name] = Output._from_data(data)
    return resolvers
