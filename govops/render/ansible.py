"""Estate → Ansible inventory (YAML).

Groups by province, system, tier and zone; group_vars by concern.
"""

from __future__ import annotations

from typing import Any

from govops.registry.estate import Estate, Host, ProvinceEstate, dns_label
from govops.registry.geography import merged_from
from govops.registry.legacy_portals import legacy_portal_domain, nginx_rules
from govops.render.common import Files, agencies, header
from govops.render.lab import lab_gateway
from govops.yamlio import dump_yaml as _dump


def render_inventory(estate: Estate, base: str) -> Files:
    hosts = estate.hosts()
    # Each province's variables, computed once: its group_vars and the host index share them.
    provinces = {code: _province_vars(estate, pe) for code, pe in estate.provinces.items()}
    files: Files = {}
    files[f"{base}/hosts.yml"] = header(estate) + _dump(_hosts_yml(estate, hosts, provinces))
    files[f"{base}/group_vars/all/estate.yml"] = header(estate) + _dump(_all_vars(estate))
    if estate.lab is not None:
        files[f"{base}/group_vars/all/connection.yml"] = header(estate) + _dump(_lab_connection())
    elif estate.cloud is not None:
        files[f"{base}/group_vars/all/connection.yml"] = header(estate) + _dump(_jump_connection())
    for pe in estate.provinces.values():
        path = f"{base}/group_vars/province_{pe.codename}/province.yml"
        files[path] = header(estate) + _dump({"govops_province": provinces[pe.codename]})
    for sid in estate.catalog.systems:
        path = f"{base}/group_vars/system_{sid}/system.yml"
        files[path] = header(estate) + _dump({"govops_system_id": sid})
    return files


def _hosts_yml(
    estate: Estate, hosts: list[Host], provinces: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}

    def add(group: str, host: Host) -> None:
        groups.setdefault(group, {"hosts": {}})["hosts"][host.name] = None

    host_vars: dict[str, dict[str, Any]] = {}
    jumps = _jump_hosts(estate, hosts)
    federated = [h for h in hosts if "monitoring_zone" in h.groups]
    for h in hosts:
        host_vars[h.name] = {"ansible_host": str(h.ip)}
        if h.name in jumps:
            host_vars[h.name]["govops_jump_host"] = jumps[h.name]
        if "monitoring_zone" in h.groups:
            host_vars[h.name] |= {"prometheus_mode": "zone", "prometheus_zone": h.zone}
        if "backup_repositories" in h.groups:
            host_vars[h.name]["govops_zone"] = h.zone
        if "monitoring_national" in h.groups:
            host_vars[h.name] |= {
                "prometheus_mode": "national",
                "prometheus_federate_targets": [
                    {"zone": z.zone, "address": f"{z.fqdn}:9090"} for z in federated
                ],
            }
        for g in h.groups:
            add(g, h)
        if h.province is not None:
            add(f"zone_{estate.provinces[h.province].zone.replace('-', '_')}", h)
    children: dict[str, Any] = {}
    # Host variables live once, under `all`; the groups only list names.
    children["provincial"] = {
        "children": {f"province_{p}": None for p in estate.provinces},
    }
    if not estate.counterparts_hosted:
        # The plays for the counterparts' stand-ins (playbooks/national.yml) match no host
        # here: the group exists, empty, rather than an unknown pattern.
        groups.setdefault("national", {"hosts": {}})
    if estate.lab is None:
        # Likewise the lab's DNS host (playbooks/dns.yml): elsewhere Designate serves names.
        groups.setdefault("dns_authoritative", {"hosts": {}})
    # And the old provinces' databases (playbooks/legacy.yml): the lab's only, where merged.
    groups.setdefault("legacy_sources", {"hosts": {}})
    for name in sorted(groups):
        members = groups[name]["hosts"]
        children[name] = {"hosts": dict.fromkeys(members)}
    all_vars: dict[str, Any] = {"govops_hosts": _host_index(hosts, provinces)}
    if estate.lab is not None:
        # Plain data for the lab's group_vars (the controller's firewall openings): reading it
        # from topology.yml parsed the whole file again in every task that used it (issue 19).
        all_vars["govops_lab_gateway"] = lab_gateway(estate)
    return {
        "all": {
            "hosts": host_vars,
            "vars": all_vars,
            "children": children,
        }
    }


# The other hosts' variables the roles read (addresses, system, province's key names).
INDEX_PROVINCE_KEYS = ("codename", "label", "zone", "db_host", "db_standby_host", "backup_host")


def _host_index(hosts: list[Host], provinces: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`govops_hosts`: each host's variables other hosts read, as plain data.

    Roles read another host's address or province as `(govops_hosts | default(hostvars))[h]`:
    `hostvars[h]` computes every variable of h on each use (~4 ms a host here), so a firewall
    or an /etc/hosts built from hostvars over the whole estate cost seconds per host and task;
    this index costs nothing to read (issue 19). Same shape as hostvars for these keys; the
    roles fall back to hostvars where there is no index (Molecule's small inventories).
    `govops render --from-pulumi` rewrites its addresses with `ansible_host`'s.
    """
    index: dict[str, Any] = {}
    for h in hosts:
        entry: dict[str, Any] = {"inventory_hostname": h.name, "ansible_host": str(h.ip)}
        if h.system is not None:
            entry["govops_system_id"] = h.system
        if h.province is not None:
            province = provinces[h.province]
            entry["govops_province"] = {k: province[k] for k in INDEX_PROVINCE_KEYS}
        index[h.name] = entry
    return index


def _jump_hosts(estate: Estate, hosts: list[Host]) -> dict[str, str]:
    """Host → the bastion its SSH goes through: the province's, or the national one for the
    hosts without a province; none in an environment without bastions (the lab)."""
    bastions = {h.province: h.fqdn for h in hosts if "bastions" in h.groups}
    return {
        h.name: bastions[h.province]
        for h in hosts
        if "bastions" not in h.groups and h.province in bastions
    }


def _jump_connection() -> dict[str, Any]:
    # SSH is admitted only from each network's bastion (infra/estate/rules.py): every other
    # host is reached through the one its `govops_jump_host` names.
    return {
        "ansible_ssh_common_args": (
            "{{ ('-o ProxyJump=' ~ govops_jump_host) if govops_jump_host is defined else '' }}"
        ),
    }


def _all_vars(estate: Estate) -> dict[str, Any]:
    cat = estate.catalog
    systems: dict[str, Any] = {}
    for sid, system in cat.systems.items():
        artifact = estate.systems[sid].artifact.model_dump()
        systems[sid] = {
            "name_vi": system.name_vi,
            "name_en": system.name_en,
            "app_port": system.app_port,
            "edge_tier": system.edge_tier,
            "tiers": {
                tier: [p.model_dump(by_alias=True) for p in spec.ports]
                for tier, spec in system.tiers.items()
            },
            "health": system.health.model_dump(),
            "database": system.database,
            "counterparts": list(system.counterparts),
            "readiness_checks": list(system.readiness_checks),
            "artifact": artifact,
        }
    counterparts = {
        cid: {
            "url": estate.counterparts[cid].url,
            "host": c.host,
            "app_port": c.app_port,
            "name_en": c.name_en,
        }
        for cid, c in cat.counterparts.items()
    }
    return {
        "govops_environment": estate.environment,
        "govops_domain": estate.domain,
        "govops_systems": systems,
        "govops_counterparts": counterparts,
        "govops_national_network": str(estate.network.national),
        # continuous backup (roles/pgbackrest) and the standby (roles/postgresql), issue 18
        "govops_backups": {
            "repo_path": "/var/lib/pgbackrest",
            "cipher": "aes-256-cbc",
            "tls_port": 8432,
            **estate.backups.model_dump(exclude={"volume_gb"}),
        },
        "govops_standby": {"synchronous": list(estate.standby.synchronous)},
        # the old portals' path mapping (roles/legacy_portals), from the registry
        "govops_legacy_portal_paths": nginx_rules(),
    }


def _lab_connection() -> dict[str, Any]:
    # The lab's SSH key and known_hosts are generated at `govops lab up` in the cache, never
    # in the repo; GOVOPS_CACHE moves the cache as it does for the lab code.
    cache = (
        "{{ lookup('ansible.builtin.env', 'GOVOPS_CACHE', default='') or "
        "(lookup('ansible.builtin.env', 'HOME') ~ '/.cache/govops') }}"
    )
    return {
        "govops_lab_cache": cache,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": "{{ govops_lab_cache }}/lab/ssh/id_ed25519",
        "ansible_ssh_common_args": (
            "-o UserKnownHostsFile={{ govops_lab_cache }}/lab/ssh/known_hosts "
            "-o StrictHostKeyChecking=yes"
        ),
    }


def _province_vars(estate: Estate, pe: ProvinceEstate) -> dict[str, Any]:
    p = pe.province
    return {
        "codename": p.codename,
        "label": dns_label(p.codename),
        "code": p.code_str,
        "name": p.name,
        "type": p.type,
        "zone": pe.zone,
        "region": pe.region,
        "network": str(pe.network),
        "subnets": {k: str(v) for k, v in pe.subnets.items()},
        "app_hosts": [h.name for h in estate.hosts({p.codename}) if h.system is not None],
        "db_host": f"{dns_label(p.codename)}-db",
        "db_standby_host": f"{dns_label(p.codename)}-db-standby",
        "backup_host": estate.backup_host(p.codename),
        "sizes": {k: vars(v) for k, v in pe.sizes.items()},
        "agencies": agencies(p),
        "communes": [{"code": c.code_str, "name": c.name, "type": c.type} for c in p.communes],
        # the old provinces' portals this province's front closes (roles/legacy_portals)
        "legacy_portals": [
            {"old_code": lp.old_code, "old_name": lp.old_name, "domain": legacy_portal_domain(lp)}
            for lp in merged_from(p.codename)
        ],
    }
