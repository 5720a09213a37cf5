"""Which legacy sources feed which province, and how to reach them.

A DSN comes from, in order: the command line (`--source OLD=DSN`, `--target DSN`), the
environment (`GOVOPS_INHERIT_SOURCE_<OLD>`, `GOVOPS_INHERIT_TARGET_<PROVINCE>`, upper case), or
`inventories/<env>/inherit.yml` (`sources: {ha_giang: DSN}`, `targets: {tuyen_quang: DSN}`).
A DSN written in that file must not hold a password: libpq reads it from PGPASSFILE or
~/.pgpass, where the environment keeps its other secrets; a lab's passwords are in its own file
in the lab's cache (`lab_passfile`), written by playbooks/legacy.yml.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from govops.errors import GovopsError, InputError
from govops.inherit.communes import name_key
from govops.lab.paths import LabPaths
from govops.paths import is_lab
from govops.redact import redact_dsn
from govops.registry.geography import LegacyProvince, merged_from, provinces
from govops.yamlio import read_yaml


class Unreachable(GovopsError):
    """A source or target that does not answer: bad input to this command (exit 2)."""

    exit_code = 2


def old_codename(lp: LegacyProvince) -> str:
    """`Bà Rịa - Vũng Tàu` → `ba_ria_vung_tau`: the name of its source and lab host."""
    return name_key(lp.old_name).replace(" ", "_")


@dataclass(frozen=True)
class Source:
    province: str  # the new province's codename
    legacy: LegacyProvince
    codename: str
    dsn: str


def absorbed(province: str) -> list[LegacyProvince]:
    """The old provinces merged into `province`, other than its own predecessor."""
    if province not in provinces():
        raise InputError(
            "--province", "province", "a province codename (e.g. tuyen_quang)", province
        )
    own = f"{provinces()[province].code:02d}"
    return [lp for lp in merged_from(province) if lp.old_code != own]


def lab_passfile(env: str, inventory: Path, environ: Mapping[str, str]) -> str | None:
    """The password file for a lab environment's databases, unless PGPASSFILE names one or
    this is no lab (production's passwords come with the operator's environment)."""
    if environ.get("PGPASSFILE") or not is_lab(env, inventory):
        return None
    passfile = LabPaths.default().pgpass(env)
    return str(passfile) if passfile.is_file() else None


def _file_config(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {"sources": {}, "targets": {}}
    data: Any = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise InputError(path, "", "a mapping with sources and targets", data)
    result: dict[str, dict[str, str]] = {}
    for key in ("sources", "targets"):
        section = data.get(key) or {}
        if not isinstance(section, dict):
            raise InputError(path, key, "a mapping of codename to DSN", section)
        for name, dsn in section.items():
            try:
                params = psycopg.conninfo.conninfo_to_dict(str(dsn))
            except psycopg.ProgrammingError:
                raise InputError(path, f"{key}.{name}", "a PostgreSQL DSN", dsn) from None
            if params.get("password"):
                raise InputError(
                    path,
                    f"{key}.{name}",
                    "a DSN without a password (use PGPASSFILE or ~/.pgpass)",
                    redact_dsn(dsn),
                )
        result[key] = {str(k): str(v) for k, v in section.items()}
    return result


def resolve(
    config_path: Path,
    province: str,
    old_province: str | None,
    sources: dict[str, str],
    target: str | None,
) -> tuple[str, list[Source]]:
    """The target DSN and each source to move, or bad input naming what is missing."""
    olds = absorbed(province)
    if old_province is not None:
        names = {old_codename(lp): lp for lp in olds}
        codes = {lp.old_code: lp for lp in olds}
        chosen = names.get(old_province) or codes.get(old_province)
        if chosen is None:
            raise InputError(
                "--old-province",
                "old_province",
                f"one of the old provinces merged into {province}: "
                f"{', '.join(sorted(names)) or 'none'}",
                old_province,
            )
        olds = [chosen]
    if not olds:
        return "", []  # nothing merged in: nothing to inherit (a runbook step's no-op)
    conf = _file_config(config_path)
    env_target = os.environ.get(f"GOVOPS_INHERIT_TARGET_{province.upper()}")
    target_dsn = target or env_target or conf["targets"].get(province)
    if not target_dsn:
        raise InputError(
            config_path,
            f"targets.{province}",
            f"a target DSN (--target, GOVOPS_INHERIT_TARGET_{province.upper()} or this file)",
        )
    result = []
    for lp in olds:
        name = old_codename(lp)
        dsn = sources.get(name) or os.environ.get(f"GOVOPS_INHERIT_SOURCE_{name.upper()}")
        dsn = dsn or conf["sources"].get(name)
        if not dsn:
            raise InputError(
                config_path,
                f"sources.{name}",
                f"a source DSN (--source {name}=DSN, GOVOPS_INHERIT_SOURCE_{name.upper()} "
                "or this file)",
            )
        result.append(Source(province, lp, name, dsn))
    return target_dsn, result


def connect(
    dsn: str, what: str, *, autocommit: bool = False
) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection in UTC (the canonical text of a timestamp), or a clear error (exit 2).
    Sources are read in autocommit: each batch's query sees committed rows, holds no snapshot."""
    try:
        return psycopg.connect(
            dsn, options="-c TimeZone=UTC", connect_timeout=10, autocommit=autocommit
        )
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())[:160] or "no answer"
        raise Unreachable(f"{what}: cannot reach {redact_dsn(dsn)}: {reason}") from None
