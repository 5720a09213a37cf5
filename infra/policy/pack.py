"""The policy pack's policies: each wraps one check of checks.py, enforcement mandatory.

The pack reads the stack's cloud facts (encrypted volume type) from the stack config the
engine passes to it, so one pack serves every province and environment.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import (
    Policy as PackPolicy,
)

from infra.policy.checks import (
    FLOW_POLICY,
    POLICIES,
    SEC_GROUP_RULE,
    STACK_POLICIES,
    Check,
    Policy,
    Resource,
    StackCheck,
    StackContext,
    flow_table,
)

PACK_NAME = "govops-estate"


def stack_context() -> StackContext:
    """The stack config's cloud facts, as `pulumi preview` hands them to the pack."""
    config = pulumi.Config("govops")
    return StackContext(
        volume_type=config.get("volumeType"),
        encryption_supported=config.get_bool("volumeEncryption") is not False,
    )


Validation = Callable[[ResourceValidationArgs, ReportViolation], None]


def _validate(check: Check) -> Validation:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props, stack_context()):
            report_violation(f"{args.name}: {message}", None)

    return validate


def policies() -> list[PackPolicy]:
    stack = (_stack_policy(name, about, check) for name, about, check in STACK_POLICIES)
    return [*(_policy(p) for p in POLICIES), _flow_policy(), *stack]


def _stack_policy(name: str, description: str, check: StackCheck) -> StackValidationPolicy:
    """A check over the whole stack (a value unknown in a preview defers it to the update)."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [Resource(r.resource_type, r.name, r.props) for r in args.resources]
        for resource, message in check(resources):
            report_violation(f"{resource}: {message}", None)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def _validate_flows(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """The stack's security-group rules against its flow table, from the same config."""
    from infra.estate.config import parse_platform, parse_province, role_of
    from infra.estate.program import read_stack_config, stack_file
    from infra.estate.rules import platform_flows, province_flows

    config = read_stack_config()
    source = stack_file(pulumi.get_stack())
    if role_of(config, source) == "platform":
        table = platform_flows(parse_platform(config, source).national)
    else:
        table = province_flows(parse_province(config, source))
    rules = {r.name: r.props for r in args.resources if r.resource_type == SEC_GROUP_RULE}
    for name, message in flow_table(rules, table):
        report_violation(f"{name}: {message}", None)


def _flow_policy() -> StackValidationPolicy:
    return StackValidationPolicy(
        name=FLOW_POLICY,
        description="Every flow of the flow table has exactly one rule; no rule lacks a flow",
        validate=_validate_flows,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def _policy(policy: Policy) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=policy.name,
        description=policy.description,
        validate=_validate(policy.check),
        enforcement_level=EnforcementLevel.MANDATORY,
    )
