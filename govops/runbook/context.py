"""What a run knows about its environment: provinces and communes (registry), the estate's
domain and counterparts, the settings executors use, and the template variables."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govops.errors import InputError
from govops.paths import cache_dir, is_lab
from govops.registry import estate_path, load_estate, provinces
from govops.registry.estate import dns_label
from govops.render.common import agencies
from govops.runbook.executors.base import RunSettings
from govops.runbook.model import Runbook, Settings
from govops.runbook.templating import TemplateError, render
from govops.yamlio import read_yaml, validate


@dataclass(frozen=True)
class CommuneInfo:
    code: str  # five digits, as the national systems write it
    codename: str
    name: str
    type: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "codename": self.codename, "name": self.name, "type": self.type}


@dataclass(frozen=True)
class ProvinceInfo:
    codename: str
    code: str  # two digits
    name: str
    communes: tuple[CommuneInfo, ...]
    # Agencies' electronic identification codes (the registry's, as rendered for the documents
    # system): [{code, name}], the People's Committee first, then each commune's.
    agencies: tuple[Mapping[str, Any], ...] = ()

    @property
    def label(self) -> str:
        return dns_label(self.codename)


@dataclass(frozen=True)
class Environment:
    env: str
    root: Path
    domain: str | None
    counterparts: Mapping[str, str]
    provinces: Mapping[str, ProvinceInfo]  # the estate's, in official code order
    default_provinces: tuple[str, ...]

    def select(self, wanted: Sequence[str] | None) -> list[str]:
        """`--provinces`: each must be in the estate; default: the lab's default provinces or
        every province of the estate."""
        if not wanted:
            return list(self.default_provinces)
        unknown = [p for p in wanted if p not in self.provinces]
        if unknown:
            raise InputError(
                f"inventories/{self.env}/estate.yml",
                "--provinces",
                f"provinces of the {self.env} estate (e.g. {', '.join(list(self.provinces)[:3])})",
                got=", ".join(unknown),
            )
        seen = set(wanted)
        return [p for p in self.provinces if p in seen]


def province_info(codename: str) -> ProvinceInfo:
    p = provinces()[codename]
    return ProvinceInfo(
        codename=p.codename,
        code=p.code_str,
        name=p.name,
        communes=tuple(CommuneInfo(c.code_str, c.codename, c.name, c.type) for c in p.communes),
        agencies=tuple({"code": a["code"], "name": a["name"]} for a in agencies(p)),
    )


def load_environment(env: str, root: Path, inventories: Path | None = None) -> Environment:
    """The estate of `env` (INVENTORIES/ENV/estate.yml, INVENTORIES defaulting to the
    checkout's inventories/) seen by the cutover engine."""
    estate = load_estate(estate_path(inventories or root / "inventories", env))
    infos = {p: province_info(p) for p in estate.provinces}
    default = estate.lab.default_provinces if estate.lab is not None else tuple(infos)
    return Environment(
        env=estate.environment,
        root=root,
        domain=estate.domain,
        counterparts={k: v.url for k, v in estate.counterparts.items()},
        provinces=infos,
        default_provinces=tuple(p for p in infos if p in default),
    )


def province_vars(
    env: Environment, province: ProvinceInfo, run_id: str, t0_iso: str, extra: Mapping[str, str]
) -> dict[str, Any]:
    """The template variables of one province (templating.PROVINCE_VARS), then the runbook's
    `vars` rendered with them."""
    context: dict[str, Any] = {
        "env": env.env,
        "province": province.codename,
        "label": province.label,
        "code": province.code,
        "name": province.name,
        "domain": env.domain or "",
        "dot_domain": f".{env.domain}" if env.domain else "",
        "counterparts": dict(env.counterparts),
        "communes": [c.as_dict() for c in province.communes],
        "commune_count": len(province.communes),
        "agencies": [dict(a) for a in province.agencies],
        "run_id": run_id,
        "t0": t0_iso,
    }
    rendered = {name: render(value, context) for name, value in extra.items()}
    context.update(rendered)
    return context


ENV_OVERRIDES = (
    "prometheus_url",
    "alertmanager_url",
    "ca_bundle",
    "resolve",
    "ssh_key",
    "known_hosts",
)


def resolve_settings(
    runbook: Runbook,
    env: str,
    root: Path,
    log_dir: Path,
    overrides: Mapping[str, str],
) -> RunSettings:
    """The runbook's settings for this run: templated with env/cache/root, then GOVOPS_<NAME>
    from the environment, then `--set` (recorded in the run, so a resume sees the same)."""
    raw: dict[str, Any] = runbook.settings.model_dump()
    for name in ENV_OVERRIDES:
        if value := os.environ.get(f"GOVOPS_{name.upper()}"):
            raw[name] = value
    raw.update(overrides)
    context = {"env": env, "cache": str(cache_dir()), "root": str(root)}
    try:
        rendered = {k: render(v, context) if isinstance(v, str) else v for k, v in raw.items()}
    except TemplateError as exc:
        raise InputError("--set", "settings", "valid settings", got=str(exc)) from None
    # Each bad setting named (--set NAME=…, GOVOPS_NAME or the runbook's settings.NAME).
    settings = validate(Settings, rendered, Path("--set"), {})
    inventory = _absolute(settings.inventory, root) or root / "inventories" / env
    lab = is_lab(env, inventory)

    def path(value: str | None, lab_default: Path | None = None) -> Path | None:
        return _absolute(value, root) or (lab_default if lab else None)

    ssh_dir = cache_dir() / "lab" / "ssh"
    return RunSettings(
        env=env,
        root=root,
        log_dir=log_dir,
        inventory=inventory,
        prometheus_url=settings.prometheus_url or None,
        alertmanager_url=settings.alertmanager_url or None,
        ca_bundle=path(settings.ca_bundle),
        resolve=settings.resolve,
        ssh_user=settings.ssh_user,
        ssh_key=path(settings.ssh_key, ssh_dir / "id_ed25519"),
        known_hosts=path(settings.known_hosts, ssh_dir / "known_hosts"),
        poll_interval=settings.poll_interval,
        addresses=inventory_addresses(inventory) if settings.resolve == "inventory" else {},
    )


def _absolute(value: str | None, root: Path) -> Path | None:
    if not value:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else root / p


def inventory_addresses(inventory: Path) -> dict[str, str]:
    """Host name → address from a rendered inventory's hosts.yml (`ansible_host`)."""
    hosts_file = inventory / "hosts.yml"
    if not hosts_file.is_file():
        return {}
    data = read_yaml(hosts_file) or {}
    if not isinstance(data, dict):
        raise InputError(hosts_file, "", "an Ansible YAML inventory (a mapping of groups)")
    found: dict[str, str] = {}

    def walk(group: Any) -> None:
        if not isinstance(group, dict):
            return
        for name, hostvars in (group.get("hosts") or {}).items():
            if isinstance(hostvars, dict) and hostvars.get("ansible_host"):
                found[name] = str(hostvars["ansible_host"])
        for child in (group.get("children") or {}).values():
            walk(child)

    for group in data.values():
        walk(group)
    return found


def check_vars(
    path: Path,
    environment: Environment,
    selected: Sequence[str],
    t0_iso: str,
    variables: Mapping[str, str],
    given: Mapping[str, str],
) -> None:
    """The runbook's vars (with `--var`, `given`) render for every selected province, before
    anything runs or is planned: a bad template is exit 2 naming it, not a traceback mid-run."""
    from govops.runbook.templating import PROVINCE_VARS, variables_of

    for name, value in given.items():
        try:
            unknown = sorted(variables_of(value) - PROVINCE_VARS)
        except TemplateError as exc:
            raise InputError("(command line)", f"--var {name}", str(exc), got=value) from None
        if unknown:
            raise InputError(
                "(command line)",
                f"--var {name}",
                f"template variables among {', '.join(sorted(PROVINCE_VARS))}",
                got=unknown[0],
            )
    for province in selected:
        try:
            province_vars(environment, environment.provinces[province], "check", t0_iso, variables)
        except TemplateError as exc:
            key = "--var" if given else "vars"
            raise InputError(path, key, f"vars that render for {province}", got=str(exc)) from None
