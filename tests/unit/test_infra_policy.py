"""The policies: the production estate passes; configs that must be refused are, naming
the resource; the pack's policies are these same checks; the fast mocks change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pulumi.runtime
import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from govops.pulumi.plan import flow_violations, stack_violations
from infra.estate.config import parse_platform, parse_province
from infra.mocks import Registration
from infra.policy.checks import (
    BACKUP_POLICY,
    FLOW_POLICY,
    POLICIES,
    SEC_GROUP_RULE,
    STANDBY_POLICY,
    StackContext,
    Violation,
    evaluate,
    required_labels,
)
from infra.policy.pack import policies
from infra.runner import StackRun, fast_mocks

from .infra_support import (
    production_runs,
    production_stacks,
    reset_pulumi,
    run_config,
    stack_config,
)


@pytest.fixture(autouse=True)
def _fresh_pulumi() -> Iterator[None]:
    reset_pulumi()
    yield
    reset_pulumi()


def violations_of(run: StackRun, config: dict[str, Any]) -> list[Violation]:
    spec = parse_province(config, "x.yaml")
    ctx = StackContext(spec.volume_type, spec.volume_encryption)
    return [
        v for r in run.registrations if r.custom for v in evaluate(r.type, r.name, r.inputs, ctx)
    ]


def test_the_production_estate_passes_every_policy() -> None:
    for s in production_stacks():
        spec = s.province or parse_platform(s.config, s.rel)  # the platform: backup volumes
        ctx = StackContext(spec.volume_type, spec.volume_encryption)
        registrations = production_runs()[s.stack].registrations
        for r in registrations:
            assert evaluate(r.type, r.name, r.inputs, ctx) == [], (s.stack, r.name)
        assert stack_violations(registrations) == [], s.stack


def _refused(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(v.policy, v.resource, v.message) for v in violations_of(run_config(config), config)]


def test_postgresql_open_to_the_public_is_refused_naming_the_resource() -> None:
    config = stack_config("production-hue")
    config["govops:systems"]["procedures"]["ports"].append(
        {"tier": "front", "port": 5432, "protocol": "tcp", "from": "public"}
    )
    assert _refused(config) == [
        (
            "no-public-admin-ingress",
            "hue-procedures-front-tcp-5432-public",
            "admits PostgreSQL (tcp/5432) from 0.0.0.0/0",
        )
    ]


def test_ssh_open_to_the_public_is_refused() -> None:
    config = stack_config("production-hue")
    config["govops:systems"]["lgsp"]["ports"].append(
        {"tier": "gateway", "port": 22, "protocol": "tcp", "from": "public"}
    )
    assert [(p, r) for p, r, _ in _refused(config)] == [
        ("no-public-admin-ingress", "hue-lgsp-gateway-tcp-22-public")
    ]


def test_a_public_subnet_is_refused() -> None:
    config = stack_config("production-hue")
    config["govops:network"]["cidr"] = "0.0.0.0/0"
    config["govops:network"]["subnets"]["mgmt"] = "46.46.192.0/18"
    del config["govops:mgmt"]  # no bastion: SSH from the whole mgmt subnet
    assert _refused(config) == [
        # SSH is admitted from the mgmt subnet, which is now public too.
        (
            "no-public-admin-ingress",
            "hue-ssh-tcp-22-mgmt",
            "admits SSH (tcp/22) from 46.46.192.0/18",
        ),
        ("private-subnets", "hue-mgmt", "cidr 46.46.192.0/18 is not a private range"),
    ]


def test_unencrypted_volumes_are_refused_where_the_cloud_encrypts() -> None:
    config = stack_config("production-hue")
    config["govops:volumeType"] = None
    refused = _refused(config)
    assert {p for p, _, _ in refused} == {"encrypted-volumes"}
    assert "hue-db-data" in {r for _, r, _ in refused} and len(refused) == 10  # + the bastion
    assert "hue-db-standby-data" in {r for _, r, _ in refused}
    config["govops:volumeEncryption"] = False  # a cloud without encryption: nothing to demand
    assert _refused(config) == []


def test_labels_are_checked_per_field() -> None:
    ctx = StackContext()
    sg = "openstack:networking/secGroup:SecGroup"
    assert required_labels(sg, {"tags": ["province=hue", "system=lgsp"]}, ctx) == [
        "tags lack tier, environment"
    ]
    assert required_labels("openstack:compute/keypair:Keypair", {}, ctx) == []
    assert required_labels("openstack:compute/serverGroup:ServerGroup", {}, ctx) == []  # none
    assert required_labels("openstack:compute/flavor:Flavor", {}, ctx) != []  # not in a table


def _args(r: Registration) -> ResourceValidationArgs:
    opts = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=r.parent,
    )
    return ResourceValidationArgs(r.type, r.inputs, r.urn, r.name, opts, None)


def test_every_flow_has_exactly_one_rule_and_no_rule_lacks_a_flow() -> None:
    """The flow-table policy, as `govops plan` runs it: a rule added beside the table, a rule
    taken away and a rule widened are each named."""
    stack = next(s for s in production_stacks() if s.stack == "production-hue")
    run = run_config(stack_config("production-hue"))
    assert flow_violations(stack, run.registrations) == []
    rules = [r for r in run.registrations if r.type == SEC_GROUP_RULE]
    dropped = [r for r in run.registrations if r.name != "hue-db-db-tcp-9187-monitor"]
    assert [(v.resource, v.message) for v in flow_violations(stack, dropped)] == [
        ("hue-db-db-tcp-9187-monitor", "flow tcp/9187 from 10.0.32.10/32 has no rule")
    ]
    widened = replace(rules[0], inputs={**rules[0].inputs, "remoteIpPrefix": "10.0.0.0/8"})
    extra = replace(rules[0], name="hue-ssh-tcp-8080-anyone", urn=rules[0].urn + "-extra")
    messages = {v.resource: v.message for v in flow_violations(stack, [widened, extra])}
    assert messages["hue-ssh-tcp-8080-anyone"] == "a rule without a flow in the flow table"
    assert "10.0.0.0/8" in messages[rules[0].name]


def test_the_pack_runs_the_same_checks_mandatory() -> None:
    pack = policies()
    assert [p.name for p in pack] == [
        *(p.name for p in POLICIES),
        FLOW_POLICY,
        STANDBY_POLICY,
        BACKUP_POLICY,
    ]
    assert {p.enforcement_level for p in pack} == {EnforcementLevel.MANDATORY}
    config = stack_config("production-hue")
    config["govops:systems"]["procedures"]["ports"].append(
        {"tier": "front", "port": 5432, "protocol": "tcp", "from": "public"}
    )
    run = run_config(config)

    def report(stack_config: dict[str, str]) -> list[str]:
        # The engine hands the pack the stack's config (PULUMI_CONFIG); do the same.
        pulumi.runtime.set_all_config(stack_config)
        reported: list[str] = []
        for r in run.registrations:
            for policy in pack:
                if isinstance(policy, ResourceValidationPolicy):
                    policy.validate(_args(r), lambda message, urn: reported.append(message))
        return reported

    encrypted = {"govops:volumeType": "encrypted", "govops:volumeEncryption": "true"}
    assert report(encrypted) == [
        "hue-procedures-front-tcp-5432-public: admits PostgreSQL (tcp/5432) from 0.0.0.0/0"
    ]
    assert len(report({"govops:volumeEncryption": "true"})) == 1 + 10  # and every volume


def test_fast_mocks_register_exactly_what_the_stock_mocks_do() -> None:
    stock = run_config(stack_config("production-hue"))
    with fast_mocks():
        fast = run_config(stack_config("production-hue"))
    assert stock.registrations == fast.registrations
    assert stock.outputs == fast.outputs


def _stack_refused(registrations: list[Registration]) -> list[tuple[str, str, str]]:
    return [(v.policy, v.resource, v.message) for v in stack_violations(registrations)]


def test_a_database_without_its_standby_or_apart_from_it_is_refused() -> None:
    config = stack_config("production-hue")
    del config["govops:db"]["standby"]
    alone = run_config(config).registrations
    assert _stack_refused(alone) == [
        ("db-standby", "hue-db", "a database server without a standby")
    ]
    pair = run_config(stack_config("production-hue")).registrations
    assert _stack_refused(pair) == []
    # The group gone, or a hint naming some other group: each host named.
    no_group = [r for r in pair if not r.type.endswith(":ServerGroup")]
    assert _stack_refused(no_group) == [
        ("db-standby", "hue-db", "no server group with the anti-affinity policy")
    ]
    elsewhere = [
        replace(r, inputs={**r.inputs, "schedulerHints": [{"group": "other-id"}]})
        if r.name == "hue-db-standby" and r.type.endswith(":Instance")
        else r
        for r in pair
    ]
    assert _stack_refused(elsewhere) == [
        ("db-standby", "hue-db-standby", "scheduler hint group 'other-id' is not anti-affinity")
    ]
    soft = [
        replace(r, inputs={**r.inputs, "policies": "soft-affinity"})
        if r.type.endswith(":ServerGroup")
        else r
        for r in pair
    ]
    assert {m for _, _, m in _stack_refused(soft)} == {
        "no server group with the anti-affinity policy"
    }


def test_a_province_without_its_zones_backup_host_is_refused() -> None:
    config = stack_config("production-hue")
    del config["govops:backup"]
    assert _stack_refused(run_config(config).registrations) == [
        ("db-backup", "hue-db", "no backup host admitted on tcp/8432 (govops:backup)")
    ]


def test_pgbackrest_open_to_the_public_is_refused() -> None:
    config = stack_config("production-hue")
    config["govops:systems"]["procedures"]["ports"].append(
        {"tier": "front", "port": 8432, "protocol": "tcp", "from": "public"}
    )
    assert _refused(config) == [
        (
            "no-public-admin-ingress",
            "hue-procedures-front-tcp-8432-public",
            "admits pgBackRest (tcp/8432) from 0.0.0.0/0",
        )
    ]


def test_the_pack_runs_the_stack_policies_as_the_plan_does() -> None:
    """The pack sees no ids (a preview's are unknown): a hint naming a group is enough there."""
    regs = run_config(stack_config("production-hue")).registrations

    def report(registrations: list[Registration]) -> list[str]:
        resources = [
            PolicyResource(r.type, r.inputs, r.urn, r.name, _args(r).opts, None, None, [], {})
            for r in registrations
        ]
        reported: list[str] = []
        for policy in policies():
            if isinstance(policy, StackValidationPolicy) and policy.name != FLOW_POLICY:
                policy.validate(StackValidationArgs(resources), lambda m, urn: reported.append(m))
        return reported

    assert report(regs) == []
    assert report([r for r in regs if r.name != "hue-db-standby"]) == [
        "hue-db: a database server without a standby"
    ]
    assert report([r for r in regs if "8432" not in r.name]) == [
        "hue-db: no backup host admitted on tcp/8432 (govops:backup)"
    ]
