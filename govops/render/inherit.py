"""Estate → `inherit.yml`: where `govops inherit` finds each old province's database and each
new province's procedures database, for an estate that runs the old databases itself (the lab's
`legacy_sources` hosts). Production's old databases are the vendors' and come from the
environment or the command line (govops/inherit/config.py), so it gets no such file."""

from __future__ import annotations

from govops.registry.estate import Estate, dns_label, legacy_codenames
from govops.render.common import Files, header
from govops.yamlio import dump_yaml

INTRO = """\
# No passwords: playbooks/legacy.yml writes them to the environment's pgpass in the lab's cache
# from its secrets. TLS is required; the lab's certificates name hosts, not these
# addresses, so the server is not verified here.
"""


def render_inherit(estate: Estate, base: str) -> Files:
    hosts = {h.name: h for h in estate.hosts()}
    sources: dict[str, str] = {}
    targets: dict[str, str] = {}
    for province in estate.provinces:
        olds = {old: hosts.get(f"legacy-{dns_label(old)}-db") for old in legacy_codenames(province)}
        found = {old: h for old, h in olds.items() if h and "legacy_sources" in h.groups}
        for old, host in found.items():
            sources[old] = f"host={host.ip} dbname=legacy user=legacy sslmode=require"
        if found:
            ip = hosts[f"{dns_label(province)}-db"].ip
            targets[province] = f"host={ip} dbname=procedures user=procedures sslmode=require"
    if not sources:
        return {}
    data = {"sources": sources, "targets": targets}
    return {f"{base}/inherit.yml": header(estate) + INTRO + dump_yaml(data)}
