"""The program's entry point.

`run()` is what `pulumi up` runs for one stack, and what `govops plan` and the tests run
under mocks for each stack: it reads the stack config and branches on `govops:role`.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi

from infra.estate.config import (
    PLATFORM_KEYS,
    PROVINCE_KEYS,
    parse_platform,
    parse_province,
    role_of,
)
from infra.estate.platform import Platform, platform_program
from infra.estate.province import ProvinceEstate

NAMESPACE = "govops"
DB_PASSWORD_KEY = "dbAdminPassword"
STACKS_DIR = "infra/stacks"


def stack_file(stack: str) -> str:
    """Where a stack's config lives (Pulumi.yaml: stackConfigDir), for messages."""
    return f"{STACKS_DIR}/Pulumi.{stack}.yaml"


def run() -> None:
    """One stack: the platform, or one province reading the platform's outputs."""
    source = stack_file(pulumi.get_stack())
    config = read_stack_config()
    if role_of(config, source) == "platform":
        platform_program(parse_platform(config, source))
        return
    spec = parse_province(config, source)
    # A secret with no default: `pulumi up` stops here until an engineer has set it.
    password = pulumi.Config(NAMESPACE).require_secret(DB_PASSWORD_KEY)
    estate = ProvinceEstate(spec, Platform.read(spec.platform_stack), password)
    # What Ansible's inventory takes (`govops render --from-pulumi`), and the public faces.
    pulumi.export("hosts", estate.hosts)
    pulumi.export("vips", estate.vips)
    pulumi.export("network", {"cidr": str(spec.network.cidr)})


def read_stack_config() -> dict[str, Any]:
    """The stack's `govops:*` values as the stack file holds them (objects decoded).

    The engine hands every value over as a string, objects as JSON; a plain string that is
    not JSON (`production`) stays as it is.
    """
    config = pulumi.Config(NAMESPACE)
    values: dict[str, Any] = {}
    for key in dict.fromkeys((*PROVINCE_KEYS, *PLATFORM_KEYS)):
        raw = config.get(key)
        if raw is None:
            continue
        try:
            values[f"{NAMESPACE}:{key}"] = json.loads(raw)
        except ValueError:
            values[f"{NAMESPACE}:{key}"] = raw
    return values
