"""`govops plan`: every stack of an environment under Pulumi's mocks, checked.

For each `infra/stacks/Pulumi.<env>-*.yaml` the Pulumi program runs as `pulumi up` would
(same entry point, the stack's own config), against mocks instead of a cloud; province
stacks read the platform's outputs, mocked from the platform stack's config. The plan
counts what would be created per province and system, fails on duplicate resource names
(which the mocks accept and the engine would not) and on policy violations (the pack's own
checks), naming the resource.

Stacks run in worker processes (one per core), each stack its own mocked run: a run costs
a few milliseconds beyond its resources, and this is how the cloud sees them anyway.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govops.errors import GovopsError, InputError, InputErrors
from govops.yamlio import line_of, load_yaml
from infra.estate.config import (
    ProvinceSpec,
    StackConfigError,
    key_str,
    parse_platform,
    parse_province,
    role_of,
)
from infra.estate.platform import platform_outputs
from infra.estate.rules import platform_flows, province_flows
from infra.mocks import Registration
from infra.policy.checks import (
    FLOW_POLICY,
    SEC_GROUP_RULE,
    STACK_POLICIES,
    Resource,
    StackContext,
    Violation,
    evaluate,
    flow_table,
)
from infra.runner import StackRun, fast_mocks, run_stack

STACKS_DIR = "infra/stacks"
SYSTEM_TIER = "govops:estate:SystemTier"
# Keys an engineer sets with `pulumi config set` (README), absent from rendered files or
# encrypted there: the plan stands in for them. A mocked run never uses them for real.
OPERATOR_KEYS = {
    "govops:dbAdminPassword": "plan-placeholder-not-a-password",
    "govops:sshPublicKey": "ssh-ed25519 AAAAplanplaceholder govops-plan",
}
SECRET_KEYS = ("govops:dbAdminPassword",)
# Resource types grouped for the table (the JSON and the totals keep every type).
GROUPS = (
    ("network", ("openstack:networking/",)),
    ("security", ("openstack:networking/secGroup",)),
    (
        "compute",
        (
            "openstack:compute/instance",
            "openstack:compute/keypair",
            "openstack:compute/serverGroup",
        ),
    ),
    ("storage", ("openstack:blockstorage/", "openstack:compute/volumeAttach")),
    ("load balancing", ("openstack:loadbalancer/",)),
    ("dns", ("openstack:dns/",)),
    ("components", ("govops:",)),
)


@dataclass(frozen=True)
class StackFile:
    stack: str  # e.g. production-hue
    rel: str  # repo-relative path, for messages
    config: dict[str, Any]
    role: str
    province: ProvinceSpec | None


@dataclass(frozen=True)
class StackPlan:
    stack: str
    file: str
    role: str
    province: str | None  # codename
    counts: dict[str, dict[str, int]]  # system ("shared", "db", "platform", …) → type → n
    duplicates: list[str]  # URNs registered more than once
    violations: list[Violation]
    outputs: dict[str, Any]

    @property
    def resources(self) -> int:
        return sum(sum(by_type.values()) for by_type in self.counts.values())


@dataclass
class Plan:
    environment: str
    stacks: list[StackPlan] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def totals(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for s in self.stacks:
            for by_type in s.counts.values():
                total.update(by_type)
        return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def resources(self) -> int:
        return sum(s.resources for s in self.stacks)

    @property
    def problems(self) -> list[str]:
        """Every duplicate name and policy violation, one line each, naming the resource."""
        lines = [
            f"{s.file}: duplicate resource name {urn}" for s in self.stacks for urn in s.duplicates
        ]
        lines += [f"{s.file}: {v}" for s in self.stacks for v in s.violations]
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "stacks": [
                {
                    "stack": s.stack,
                    "file": s.file,
                    "role": s.role,
                    "province": s.province,
                    "resources": s.resources,
                    "systems": s.counts,
                    "duplicates": s.duplicates,
                    "violations": [vars(v) for v in s.violations],
                }
                for s in self.stacks
            ],
            "totals": self.totals,
            "resources": self.resources,
            "problems": self.problems,
            "seconds": round(self.seconds, 3),
        }


def group_of(typ: str) -> str:
    """The table column of a resource type: the most specific prefix wins."""
    best, length = "other", 0
    for name, prefixes in GROUPS:
        for prefix in prefixes:
            if typ.startswith(prefix) and len(prefix) > length:
                best, length = name, len(prefix)
    return best


def read_stacks(root: Path, env: str) -> list[StackFile]:
    """The environment's stack files, validated; every problem names file, line and key."""
    paths = sorted((root / STACKS_DIR).glob(f"Pulumi.{env}-*.yaml"))
    if not paths:
        raise InputError(root / STACKS_DIR, f"Pulumi.{env}-*.yaml", "rendered stack files")
    stacks: list[StackFile] = []
    errors: list[InputError] = []
    for path in paths:
        try:
            stacks.append(_read_stack(root, path))
        except StackConfigError as exc:
            errors.append(_input_error(root, exc))
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise InputErrors(errors)
    return stacks


def select(root: Path, stacks: list[StackFile], province: str | None) -> list[StackFile]:
    """All stacks, or the one of `province` (a codename, e.g. hue)."""
    if province is None:
        return stacks
    chosen = [s for s in stacks if s.province is not None and s.province.codename == province]
    if not chosen:
        known = ", ".join(s.province.codename for s in stacks if s.province is not None)
        raise InputError(
            root / STACKS_DIR, "--province", f"a province with a stack ({known})", got=province
        )
    return chosen


def _read_stack(root: Path, path: Path) -> StackFile:
    rel = str(path.relative_to(root))
    data, _ = load_yaml(path)
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise InputError(path, "config", "a mapping of stack config keys", got=config)
    config = dict(config)
    for key, placeholder in OPERATOR_KEYS.items():
        if key not in config or isinstance(config[key], dict):  # absent, or `secure:` (sealed)
            config[key] = placeholder
    role = role_of(config, rel)
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if role == "platform":
        parse_platform(config, rel)
        return StackFile(stack, rel, config, role, None)
    return StackFile(stack, rel, config, role, parse_province(config, rel))


def _input_error(root: Path, exc: StackConfigError) -> InputError:
    """A StackConfigError, with the line of the key in its file."""
    path = root / exc.source
    line = None
    try:
        _, lines = load_yaml(path)
        line = line_of(lines, exc.key)
    except InputError:
        pass
    return InputError(path, key_str(exc.key), exc.expected, got=exc.got, line=line)


def platform_answers(stacks: Iterable[StackFile]) -> dict[str, dict[str, Any]]:
    """What each province's StackReference reads: the platform stack's outputs, from its
    config; keyed by the reference (`organization/govops/production-platform`)."""
    platforms = {s.stack: parse_platform(s.config, s.rel) for s in stacks if s.role == "platform"}
    answers: dict[str, dict[str, Any]] = {}
    for s in stacks:
        if s.province is None:
            continue
        ref = s.province.platform_stack
        spec = platforms.get(ref.rsplit("/", 1)[-1])
        if spec is None:
            raise InputError(
                s.rel,
                "config.govops:platformStack",
                f"a platform stack of this environment ({', '.join(platforms) or 'none found'})",
                got=ref,
            )
        # The zone's id is what the mocks give the platform's zone resource.
        answers[ref] = platform_outputs(spec, zone_id=f"{spec.dns_zone}-id")
    return answers


def summarize(stack: StackFile, run: StackRun) -> StackPlan:
    """Counts per system and type, duplicate URNs, policy violations of one stack's run."""
    by_urn = {r.urn: r for r in run.registrations}
    label = stack.province.label if stack.province is not None else ""
    counts: dict[str, Counter[str]] = {}
    for r in run.registrations:
        counts.setdefault(_system_of(r, by_urn, label, stack.role), Counter())[r.type] += 1
    seen = Counter(r.urn for r in run.registrations)
    # The cloud's encrypted volume type: a province's, or the platform's (backup hosts).
    spec = stack.province or parse_platform(stack.config, stack.rel)
    ctx = StackContext(volume_type=spec.volume_type, encryption_supported=spec.volume_encryption)
    violations = [
        v for r in run.registrations if r.custom for v in evaluate(r.type, r.name, r.inputs, ctx)
    ]
    violations += flow_violations(stack, run.registrations)
    violations += stack_violations(run.registrations)
    return StackPlan(
        stack=stack.stack,
        file=stack.rel,
        role=stack.role,
        province=stack.province.codename if stack.province else None,
        counts={k: dict(sorted(v.items())) for k, v in sorted(counts.items())},
        duplicates=sorted(urn for urn, n in seen.items() if n > 1),
        violations=violations,
        outputs=run.outputs,
    )


def flow_violations(stack: StackFile, registrations: list[Registration]) -> list[Violation]:
    """The policy pack's flow-table rule (infra/policy/checks.py) on the stack's rules."""
    if stack.province is not None:
        table = province_flows(stack.province)
    else:
        table = platform_flows(parse_platform(stack.config, stack.rel).national)
    rules = {r.name: r.inputs for r in registrations if r.type == SEC_GROUP_RULE}
    return [
        Violation(FLOW_POLICY, name, SEC_GROUP_RULE, message)
        for name, message in flow_table(rules, table)
    ]


def stack_violations(registrations: list[Registration]) -> list[Violation]:
    """The pack's stack policies (a standby per database, a backup host admitted); the
    mocks' ids are `<name>-id`, so a scheduler hint is checked against the group's id."""
    resources = [Resource(r.type, r.name, r.inputs, f"{r.name}-id") for r in registrations]
    return [
        Violation(name, resource, "stack", message)
        for name, _, check in STACK_POLICIES
        for resource, message in check(resources)
    ]


def _system_of(r: Registration, by_urn: Mapping[str, Registration], label: str, role: str) -> str:
    if role == "platform":
        return "platform"
    node: Registration | None = r
    while node is not None:
        if node.type == SYSTEM_TIER:
            return node.name.removeprefix(f"{label}-")
        node = by_urn.get(node.parent)
    return "shared"


OnStack = Callable[[StackPlan], None]
OnStart = Callable[[list[StackFile]], None]


def plan(
    root: Path,
    env: str,
    province: str | None = None,
    jobs: int | None = None,
    fast: bool = True,
    on_start: OnStart | None = None,
    on_stack: OnStack | None = None,
) -> Plan:
    """Plan the environment's stacks, or one province's; see the module docstring.

    `on_start` is called with the stacks once the workers exist, `on_stack` as each
    stack's plan is ready (in completion order; the result is in file order).
    """
    started = time.perf_counter()
    every = read_stacks(root, env)
    stacks = select(root, every, province)
    result = Plan(env)
    try:
        for stack, run in run_stacks(stacks, platform_answers(every), jobs, fast, on_start):
            planned = summarize(stack, run)
            result.stacks.append(planned)
            if on_stack is not None:
                on_stack(planned)
    except StackConfigError as exc:
        raise _input_error(root, exc) from None
    order = {s.stack: i for i, s in enumerate(stacks)}
    result.stacks.sort(key=lambda s: order[s.stack])
    result.seconds = time.perf_counter() - started
    return result


def run_stacks(
    stacks: list[StackFile],
    answers: dict[str, dict[str, Any]],
    jobs: int | None = None,
    fast: bool = True,
    on_start: OnStart | None = None,
) -> Iterator[tuple[StackFile, StackRun]]:
    """Each stack's program under mocks, as the runs complete.

    `jobs` worker processes (default one per core; 1 runs here, in this process); `fast`
    applies infra.runner.fast_mocks (the same registrations, several times faster).
    """
    workers = min(jobs or os.cpu_count() or 1, len(stacks))
    if "fork" not in multiprocessing.get_all_start_methods():
        workers = 1  # no fork (Windows): plan in this process
    with fast_mocks() if fast else nullcontext():
        if workers <= 1:
            if on_start is not None:
                on_start(stacks)
            for s in stacks:
                yield s, _run(s, answers)
            return
        # Fork, not spawn: workers inherit the imported SDK and the fast_mocks state and
        # start in milliseconds. All are forked at the first submit, before the pool's own
        # thread and the caller's progress display (on_start) exist; buffered output is
        # flushed first so that no worker writes it again when it exits. The biggest
        # provinces go first, so no worker is left with a big one at the end.
        sys.stdout.flush()
        sys.stderr.flush()
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_run, s, answers): s for s in sorted(stacks, key=_size)}
            if on_start is not None:
                on_start(stacks)
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            except BaseException:  # a failed stack, Ctrl-C, or the caller gave up
                pool.shutdown(cancel_futures=True)
                raise


def _size(stack: StackFile) -> int:
    """Minus the host count: sorts the biggest stacks first."""
    p = stack.province
    return -sum(len(sys_.hosts) for sys_ in p.systems.values()) if p is not None else 0


def _run(stack: StackFile, answers: dict[str, dict[str, Any]]) -> StackRun:
    try:
        return run_stack(stack.stack, stack.config, answers, SECRET_KEYS)
    except StackConfigError:
        raise
    except Exception as exc:  # the program failed: name the stack, keep the cause
        raise GovopsError(f"{stack.rel}: the program failed under mocks: {exc}") from exc
