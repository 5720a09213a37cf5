"""Operations of one estate: its adapters (the estate's `adapter:` per system and counterpart,
else the lab stand-ins') and where each system and counterpart is."""

from __future__ import annotations

from typing import Any

from govops.adapters.model import Adapter, Request, ResolveError, adapter_for, resolve
from govops.registry.estate import Estate, dns_label


def estate_adapter(estate: Estate, kind: str, name: str) -> Adapter:
    entries: dict[str, Any] = estate.systems if kind == "systems" else estate.counterparts
    entry = entries.get(name)
    if entry is None:
        raise ResolveError(f"{kind}.{name}: not part of the {estate.environment} estate")
    configured = estate.path.parent / entry.adapter if entry.adapter else None
    return adapter_for(kind, name, configured)


def base_url(estate: Estate, kind: str, name: str, province: str) -> str:
    """A system's front (its service name `<province>-<system>`, as the prober calls it) or
    the counterpart's URL from the estate."""
    if kind == "counterparts":
        return str(estate.counterparts[name].url)
    return f"https://{estate.fqdn(f'{dns_label(province)}-{name}')}"


def front_url(estate: Estate, kind: str, name: str, province: str) -> str:
    """Where the operations of `kind.name` are sent for `province`: the adapter's own base
    when it has one (a vendor's host, port or prefix), else base_url."""
    adapter = estate_adapter(estate, kind, name)
    if adapter.base:
        return render_base(adapter.base, estate, province)
    return base_url(estate, kind, name, province)


def render_base(template: str, estate: Estate, province: str) -> str:
    from govops.adapters.model import _text

    return _text(template, _where(estate, province), quote=False)


def _where(estate: Estate, province: str) -> dict[str, str]:
    return {
        "label": dns_label(province),
        "province": province,
        "dot_domain": f".{estate.domain}" if estate.domain else "",
    }


def request_for(
    estate: Estate, kind: str, name: str, operation: str, inputs: dict[str, Any], province: str
) -> Request:
    """The request that `operation` of `kind.name` is for `province`, through the estate's
    adapter (ResolveError when the adapter does not implement it or an input is missing)."""
    adapter = estate_adapter(estate, kind, name)
    return resolve(
        adapter, operation, inputs, base_url(estate, kind, name, province), _where(estate, province)
    )
