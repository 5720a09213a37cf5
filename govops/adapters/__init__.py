"""Operations, not URLs: what govops asks of each system and counterpart, and how a vendor's
system is asked it.

The catalog (govops/registry/data/operations.yml) declares each interface's operations. An
adapter file maps each operation to one HTTP request for one vendor; the lab stand-ins' adapter
(govops/registry/data/adapters/standin/, reference: docs/standins-contract.md) is the default,
and an estate names another per system or counterpart (`adapter: PATH`). The runbook engine's
`operation` executor and `govops estate check` resolve operations through `resolve`.
"""

from govops.adapters.model import (
    Adapter,
    AdapterOperation,
    Interface,
    OperationSpec,
    Request,
    ResolveError,
    adapter_for,
    interface_catalog,
    load_adapter,
    resolve,
    standin_adapter_path,
)

__all__ = [
    "Adapter",
    "AdapterOperation",
    "Interface",
    "OperationSpec",
    "Request",
    "ResolveError",
    "adapter_for",
    "interface_catalog",
    "load_adapter",
    "resolve",
    "standin_adapter_path",
]
