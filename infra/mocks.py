"""Pulumi's unit-test mode for this program: mocks that record what would be created.

Used by `govops plan` and the unit tests alike. The engine cannot run here, so resources go
to Pulumi's MockMonitor; `RecordingMonitor` keeps every registration (type, name, URN,
parent, inputs as the engine would see them), because the stock monitor keeps one entry per
URN and so hides duplicates the real engine rejects. Registrations may arrive on the SDK's
worker threads: the list is guarded by a lock, sorted, and read only after the run returns.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import rpc, sync_await
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import get_root_resource, set_root_resource

STACK_REFERENCE = "pulumi:pulumi:StackReference"
# Untyped in the SDK; typed here once.
_ensure_event_loop: Callable[[], object] = sync_await._ensure_event_loop
_test: Callable[[Callable[[], object]], Callable[[], None]] = pulumi.runtime.test
# Addresses the cloud would pick, stable per resource name: documentation ranges, so a
# mocked address is never mistaken for a real one.
_PRIVATE_VIPS = IPv4Address("198.18.0.0")  # RFC 2544 benchmarking range
_PUBLIC_IPS = IPv4Address("203.0.113.0")  # RFC 5737 TEST-NET-3


@dataclass(frozen=True)
class Registration:
    type: str
    name: str
    urn: str
    parent: str  # the parent's URN ("" for the stack's children)
    custom: bool
    inputs: dict[str, Any]  # wire names (camelCase), as a policy pack sees them


class EstateMocks(Mocks):
    """Cheap, deterministic answers: only what the engine computes, never an echo of the
    inputs (the SDK resolves any output the mock leaves out from the resource's inputs)."""

    def __init__(self, stack_outputs: Mapping[str, Mapping[str, Any]]) -> None:
        self.stack_outputs = stack_outputs  # platform stack name → its outputs

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == STACK_REFERENCE:
            outputs = self.stack_outputs.get(args.name)
            if outputs is None:
                raise KeyError(f"no outputs mocked for the stack reference {args.name!r}")
            return args.name, {"name": args.name, "outputs": dict(outputs)}
        return f"{args.name}-id", _computed(args.typ, args.name, args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "openstack:networking/getNetwork:getNetwork":
            name = str(args.args.get("name", "network"))
            return {"id": f"{name}-id", "name": name, "external": True}, []
        return {}, []


def _computed(typ: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    n = zlib.crc32(name.encode()) % 65534 + 1
    if typ == "openstack:compute/instance:Instance":
        networks = inputs.get("networks") or [{}]
        return {"accessIpV4": networks[0].get("fixedIpV4", "")}
    if typ == "openstack:loadbalancer/loadBalancer:LoadBalancer":
        return {"vipAddress": str(_PRIVATE_VIPS + n), "vipPortId": f"{name}-vip-port"}
    if typ == "openstack:networking/floatingIp:FloatingIp":
        return {"address": str(_PUBLIC_IPS + n % 254 + 1)}
    return {}


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self._lock = threading.Lock()
        self._registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        """The stock method, plus recording; without the stock method's transform lookup
        (the program registers none) and with the mock's plain answer packed directly."""
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()  # deserializing resource references needs one on this thread
        inputs = rpc.deserialize_properties(request.object)
        args = MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=inputs,
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom or False,
        )
        found_id, state = self.mocks.new_resource(args)
        id_ = found_id or ""
        obj = struct_pb2.Struct()
        obj.update(state)  # plain JSON values only: EstateMocks never answers with secrets
        registration = Registration(
            request.type, request.name, urn, request.parent, bool(request.custom), inputs
        )
        with self._lock:
            self.resources[urn] = MockMonitor.ResourceRegistration(urn, id_, state)
            self._registrations.append(registration)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)

    def registrations(self) -> list[Registration]:
        """Everything registered, sorted by URN then name (arrival order is thread order)."""
        with self._lock:
            return sorted(self._registrations, key=lambda r: (r.urn, r.type, r.name))


def run_mocked(
    program: Callable[[], object],
    mocks: EstateMocks,
    project: str = "govops",
    stack: str = "plan",
) -> tuple[list[Registration], dict[str, Any]]:
    """Run `program` under the mocks, as a stack: return what it registered and exported,
    once every RPC is done."""
    monitor = RecordingMonitor(mocks)
    # A fresh root stack per run: set_mocks keeps the previous one, exports and all.
    set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    exported: dict[str, Any] = {}

    def main() -> pulumi.Output[None]:
        program()
        # Under mocks the root stack registered its (empty) outputs before the program
        # ran, so the exports are read from it here and resolved with the run.
        root = get_root_resource()
        outputs = getattr(root, "outputs", {})
        return pulumi.Output.from_input(dict(outputs)).apply(exported.update)

    _test(main)()
    return monitor.registrations(), exported
