"""The stand-in's JSON config: parsed once, validated, errors name the file and the key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import AGENCY_CODE, COMMUNE_CODE, PROVINCE_CODE

PROVINCIAL = ("procedures", "documents", "lgsp", "reporting", "meetings")
NATIONAL = ("national-portal", "national-docaxis", "national-ndxp", "national-reporting")
KINDS = PROVINCIAL + NATIONAL
NEEDS = {  # counterparts each kind cannot work without
    "procedures": ("portal",),
    "documents": ("docaxis",),
    "reporting": ("reporting",),
}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Commune:
    code: str
    name: str = ""
    type: str = ""


@dataclass(frozen=True)
class Agency:
    code: str
    name: str = ""


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str
    sslmode: str = "disable"
    sslrootcert: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SsoRelyingParty:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str | None = None  # default: derived from Host / X-Forwarded-Proto
    issuer: str | None = None  # browser-facing portal URL; default counterparts.portal


@dataclass(frozen=True)
class SsoClient:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    source: str
    kind: str
    host: str
    port: int
    province: str | None = None
    province_name: str | None = None
    communes: tuple[Commune, ...] = ()
    agencies: tuple[Agency, ...] = ()
    database: DatabaseConfig | None = None
    state_path: str | None = None
    counterparts: dict[str, str] = field(default_factory=dict)
    ca_file: str | None = None
    sso: SsoRelyingParty | None = None
    sso_clients: tuple[SsoClient, ...] = ()
    provinces: dict[str, dict[str, str]] = field(default_factory=dict)
    issuer: str = "national-portal"
    fault_token: str | None = field(default=None, repr=False)
    # A real procedures system pushes its records on its own: by default so does the stand-in
    # (0 would leave the prober's test dossiers unsynced and GovopsDossierSyncLagging firing).
    sync_interval_seconds: float = 60.0
    http_timeout_seconds: float = 10.0

    @property
    def commune_codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.communes)

    @property
    def agency_codes(self) -> frozenset[str]:
        return frozenset(a.code for a in self.agencies)


def read_secret_file(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


def load_config(path: str) -> Config:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read JSON config: {exc}") from exc
    return parse_config(data, path)


def parse_config(
    data: Any, source: str = "<config>", read_secret: Callable[[str], str] = read_secret_file
) -> Config:
    def fail(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {why}")

    def get(
        obj: Any, key: str, kind: type | tuple[type, ...], path: str, required: bool = False
    ) -> Any:
        value = obj.get(key) if isinstance(obj, dict) else None
        if value is None:
            if required:
                raise fail(path, "required")
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise fail(path, f"expected {getattr(kind, '__name__', kind)}")
        return value

    def secret(path_value: str, key: str) -> str:
        try:
            value = read_secret(path_value)
        except OSError as exc:
            raise fail(key, f"cannot read secret file: {exc.strerror or exc}") from exc
        if not value:
            raise fail(key, "secret file is empty")
        return value

    if not isinstance(data, dict):
        raise fail("(root)", "expected a JSON object")
    kind = get(data, "kind", str, "kind", required=True)
    if kind not in KINDS:
        raise fail("kind", f"must be one of {', '.join(KINDS)}")
    listen = get(data, "listen", str, "listen", required=True)
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        raise fail("listen", "expected host:port, e.g. 127.0.0.1:8081")
    province = get(data, "province", str, "province", required=kind in PROVINCIAL)
    if province is not None and not PROVINCE_CODE.match(province):
        raise fail("province", f"must match {PROVINCE_CODE.pattern}")

    communes = []
    for i, item in enumerate(get(data, "communes", list, "communes") or []):
        code = get(item, "code", str, f"communes[{i}].code", required=True)
        if not COMMUNE_CODE.match(code):
            raise fail(f"communes[{i}].code", "expected five digits")
        communes.append(Commune(code, item.get("name", ""), item.get("type", "")))
    agencies = []
    for i, item in enumerate(get(data, "agencies", list, "agencies") or []):
        code = get(item, "code", str, f"agencies[{i}].code", required=True)
        if not AGENCY_CODE.match(code):
            raise fail(f"agencies[{i}].code", f"must match {AGENCY_CODE.pattern}")
        agencies.append(Agency(code, item.get("name", "")))
    if kind in ("procedures", "meetings") and not communes:
        raise fail("communes", f"required for kind {kind}")
    if kind == "documents" and not agencies:
        raise fail("agencies", "required for kind documents")

    database = None
    db = get(data, "database", dict, "database")
    if db is not None:
        sslmode = get(db, "sslmode", str, "database.sslmode") or "disable"
        if sslmode not in ("disable", "require", "verify-ca", "verify-full"):
            raise fail("database.sslmode", "one of disable, require, verify-ca, verify-full")
        pw_file = get(db, "password_file", str, "database.password_file")
        database = DatabaseConfig(
            dsn=get(db, "dsn", str, "database.dsn", required=True),
            sslmode=sslmode,
            sslrootcert=get(db, "sslrootcert", str, "database.sslrootcert"),
            password=secret(pw_file, "database.password_file") if pw_file else None,
        )
    state_path = get(data, "state_path", str, "state_path")
    if database is None and state_path is None:
        raise fail("database", "either database (PostgreSQL) or state_path (SQLite) is required")

    counterparts = get(data, "counterparts", dict, "counterparts") or {}
    for name, url in counterparts.items():
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise fail(f"counterparts.{name}", "expected an http(s) URL")
    for name in NEEDS.get(kind, ()):
        if name not in counterparts:
            raise fail(f"counterparts.{name}", f"required for kind {kind}")

    sso = None
    sso_data = get(data, "sso", dict, "sso")
    if kind == "procedures" and sso_data is None:
        raise fail("sso", "required for kind procedures")
    if sso_data is not None:
        secret_file = get(sso_data, "client_secret_file", str, "sso.client_secret_file", True)
        sso = SsoRelyingParty(
            client_id=get(sso_data, "client_id", str, "sso.client_id", required=True),
            client_secret=secret(secret_file, "sso.client_secret_file"),
            redirect_uri=get(sso_data, "redirect_uri", str, "sso.redirect_uri"),
            issuer=get(sso_data, "issuer", str, "sso.issuer"),
        )
    clients = []
    for i, item in enumerate(get(data, "sso_clients", list, "sso_clients") or []):
        key = f"sso_clients[{i}]"
        uris = get(item, "redirect_uris", list, f"{key}.redirect_uris", required=True)
        clients.append(
            SsoClient(
                client_id=get(item, "client_id", str, f"{key}.client_id", required=True),
                client_secret=secret(
                    get(
                        item, "client_secret_file", str, f"{key}.client_secret_file", required=True
                    ),
                    f"{key}.client_secret_file",
                ),
                redirect_uris=tuple(str(u) for u in uris),
            )
        )
    provinces = get(data, "provinces", dict, "provinces") or {}
    for name, systems in provinces.items():
        if not PROVINCE_CODE.match(name) or not isinstance(systems, dict):
            raise fail(f"provinces.{name}", "expected a province codename mapping to URLs")

    token_file = get(data, "fault_token_file", str, "fault_token_file")
    numbers = {}
    for key, default in (("sync_interval_seconds", 60.0), ("http_timeout_seconds", 10.0)):
        value = get(data, key, (int, float), key)
        if value is not None and value < 0:
            raise fail(key, "must not be negative")
        numbers[key] = float(default if value is None else value)
    return Config(
        source=source,
        kind=kind,
        host=host,
        port=int(port_text),
        province=province,
        province_name=get(data, "province_name", str, "province_name"),
        communes=tuple(communes),
        agencies=tuple(agencies),
        database=database,
        state_path=state_path,
        counterparts=dict(counterparts),
        ca_file=get(data, "ca_file", str, "ca_file"),
        sso=sso,
        sso_clients=tuple(clients),
        provinces={k: dict(v) for k, v in provinces.items()},
        issuer=get(data, "issuer", str, "issuer") or "national-portal",
        fault_token=secret(token_file, "fault_token_file") if token_file else None,
        **numbers,
    )
