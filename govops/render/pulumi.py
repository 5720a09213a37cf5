"""Estate → Pulumi stack configs: one stack per province and environment, plus the platform.

Stack `<env>-<province>` provisions one province (infra/ reads `govops:*`); stack
`<env>-platform` holds what provinces share and read through a StackReference.

The renderer owns the keys it writes. What an engineer sets with `pulumi config set` in the
same file (`govops:dbAdminPassword` as a `secure:` value, `govops:sshPublicKey` on the
platform, the secrets provider's `encryptionsalt`) is not rendered, so it is carried over
from the file on disk: rendering again must never drop a secret, and `--check` stays clean.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from govops.errors import InputError
from govops.registry.estate import BASTION_VOLUME_GB, Estate, Host, ProvinceEstate
from govops.render.common import Files, header
from govops.yamlio import dump_yaml, read_yaml


def stack_name(env: str, province: str | None) -> str:
    return f"{env}-{province.replace('_', '-')}" if province else f"{env}-platform"


def render_stacks(estate: Estate, base: str) -> Files:
    if estate.cloud is None:
        return {}
    files: Files = {}
    env = estate.environment
    # estate.yml sits at <root>/inventories/<env>/: the stack files on disk are under <root>.
    root = estate.path.parent.parent.parent
    platform_ref = f"{estate.cloud.organization}/govops/{stack_name(env, None)}"
    rel = f"{base}/Pulumi.{stack_name(env, None)}.yaml"
    files[rel] = header(estate) + dump_yaml(_with_kept(root / rel, _platform_config(estate)))
    for p, pe in estate.provinces.items():
        config = _province_config(estate, pe) | {"govops:platformStack": platform_ref}
        rel = f"{base}/Pulumi.{stack_name(env, p)}.yaml"
        files[rel] = header(estate) + dump_yaml(_with_kept(root / rel, config))
    return files


def _with_kept(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The stack file's content: top-level keys other than `config` from the file on disk
    (the secrets provider's, first, where Pulumi writes them), then the rendered config,
    then the config keys on disk that the renderer does not write, in their file order.
    """
    if not path.is_file():
        return {"config": config}
    current = read_yaml(path)
    if not isinstance(current, dict):
        return {"config": config}
    kept_top = {k: v for k, v in current.items() if k != "config"}
    on_disk = current.get("config")
    if on_disk is not None and not isinstance(on_disk, dict):
        raise InputError(path, "config", "a mapping of stack config keys", got=on_disk)
    kept = {k: v for k, v in (on_disk or {}).items() if k not in config}
    return kept_top | {"config": config | kept}


def _platform_config(estate: Estate) -> dict[str, Any]:
    assert estate.cloud is not None
    return {
        "govops:environment": estate.environment,
        "govops:role": "platform",
        "govops:image": estate.cloud.image,
        "govops:dnsZone": estate.cloud.dns_zone,
        "govops:counterparts": {cid: c.url for cid, c in estate.counterparts.items()},
        "govops:national": _national_config(estate),
        # The backup hosts' volumes take the same encrypted type as the provinces'.
        "govops:volumeType": estate.cloud.volume_type,
        "govops:volumeEncryption": estate.cloud.volume_encryption,
    }


def _role(h: Host) -> str:
    if "bastions" in h.groups:
        return "bastion"
    if "backup_repositories" in h.groups:
        return "backup"
    return "zone-monitor" if "monitoring_zone" in h.groups else "monitor"


def backup_volume_gb(estate: Estate, zone: str) -> int:
    """A zone's backup host's volume: the estate's `backups.volume_gb`, else twice the sum of
    its provinces' database volumes (two full backups' retention, the diffs and incrementals
    between them and the WAL, before pgBackRest's compression)."""
    if estate.backups.volume_gb is not None:
        return estate.backups.volume_gb
    return 2 * sum(pe.sizes["db"].volume_gb for pe in estate.provinces.values() if pe.zone == zone)


def _national_config(estate: Estate) -> dict[str, Any]:
    """The platform's own hosts (monitoring, the zones' backup hosts, the national bastion)
    in the national range."""
    assert estate.cloud is not None
    cloud = estate.cloud
    every = estate.hosts()
    zone_of = {p: pe.zone for p, pe in estate.provinces.items()}
    hosts = []
    for h in every:
        if h.province is not None or "national" in h.groups:
            continue  # provinces build theirs; the counterparts are the government's
        role = _role(h)
        host: dict[str, Any] = {"name": h.name, "ip": str(h.ip), "role": role}
        if h.zone is not None:
            host["zone"] = h.zone
        host["flavor"] = cloud.bastion_flavor if role == "bastion" else cloud.monitor_flavor
        if role == "backup" and h.zone is not None:
            host["volumeGb"] = backup_volume_gb(estate, h.zone)
            # The zone's database hosts: they archive WAL to it, it backs them up (8432).
            host["clients"] = [
                {"name": c.name, "ip": str(c.ip)}
                for c in every
                if c.province is not None
                and "tier_db" in c.groups
                and zone_of[c.province] == h.zone
            ]
        hosts.append(host)
    config: dict[str, Any] = {
        "cidr": str(estate.network.national),
        "externalNetwork": cloud.external_network,
        "hosts": hosts,
    }
    if cloud.operators is not None:
        config["operators"] = str(cloud.operators)
    return config


def _province_config(estate: Estate, pe: ProvinceEstate) -> dict[str, Any]:
    assert estate.cloud is not None
    cat = estate.catalog
    hosts = estate.hosts({pe.codename})
    systems: dict[str, Any] = {}
    for sid, system in cat.systems.items():
        size = pe.sizes[sid]
        systems[sid] = {
            "flavor": size.flavor,
            "volumeGb": size.volume_gb,
            "edgeTier": system.edge_tier,
            "appPort": system.app_port,
            # The load balancer's health monitor probes this path on the edge tier.
            "readiness": system.health.readiness,
            "ports": [
                {"tier": tier, "port": p.port, "protocol": p.protocol, "from": p.from_}
                for tier, spec in system.tiers.items()
                for p in spec.ports
            ],
            "hosts": [{"name": h.name, "ip": str(h.ip)} for h in hosts if h.system == sid],
        }
    db = next(h for h in hosts if "db_primaries" in h.groups)
    standby = next((h for h in hosts if "db_standbys" in h.groups), None)
    backup = next((h for h in estate.hosts() if _backs_up(h, pe)), None)
    bastion = next((h for h in hosts if "bastions" in h.groups), None)
    monitor = estate.monitors_of(pe.zone)[0]
    mgmt: dict[str, Any] = {"monitor": {"name": monitor.name, "ip": str(monitor.ip)}}
    if bastion is not None:
        mgmt["bastion"] = {"name": bastion.name, "ip": str(bastion.ip)}
        mgmt["bastionFlavor"] = estate.cloud.bastion_flavor
        mgmt["bastionVolumeGb"] = BASTION_VOLUME_GB
    if estate.cloud.operators is not None:
        mgmt["operators"] = str(estate.cloud.operators)
    db_config: dict[str, Any] = {
        "flavor": pe.sizes["db"].flavor,
        "volumeGb": pe.sizes["db"].volume_gb,
        "host": {"name": db.name, "ip": str(db.ip)},
    }
    if standby is not None:
        # Its streaming standby: the same flavor and volume size, on another hypervisor.
        db_config["standby"] = {"name": standby.name, "ip": str(standby.ip)}
    config: dict[str, Any] = {
        "openstack:region": pe.region,
        "govops:environment": estate.environment,
        "govops:role": "province",
        "govops:province": {
            "codename": pe.codename,
            "code": pe.province.code_str,
            "name": pe.province.name,
            "zone": pe.zone,
            "communes": len(pe.province.communes),
        },
        "govops:network": {
            "cidr": str(pe.network),
            "subnets": {k: str(v) for k, v in pe.subnets.items()},
            # Ports reachable `from: national` open to this range (the counterparts' hosts).
            "national": str(estate.network.national),
        },
        "govops:externalNetwork": estate.cloud.external_network,
        "govops:volumeType": estate.cloud.volume_type,
        "govops:volumeEncryption": estate.cloud.volume_encryption,
        "govops:systems": systems,
        "govops:db": db_config,
        # Who manages and watches the province: its bastion, its zone's Prometheus.
        "govops:mgmt": mgmt,
    }
    if backup is not None:
        # The zone's backup host (pgBackRest's repository): it reaches the database hosts.
        config["govops:backup"] = {"name": backup.name, "ip": str(backup.ip)}
    return config


def _backs_up(h: Host, pe: ProvinceEstate) -> bool:
    return "backup_repositories" in h.groups and h.zone == pe.zone
