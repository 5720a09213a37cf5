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
)
from pulumi_policy import (
    Policy as PackPolicy,
)

from infra.policy.checks import POLICIES, Check, Policy, StackContext

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
    return [_policy(p) for p in POLICIES]


def _policy(policy: Policy) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=policy.name,
        description=policy.description,
        validate=_validate(policy.check),
        enforcement_level=EnforcementLevel.MANDATORY,
    )
