"""What every renderer shares: the file map, the header, derived identifiers."""

from __future__ import annotations

from typing import Any

from govops.registry.estate import Estate
from govops.registry.geography import Province

Files = dict[str, str]  # repo-relative path → content
RENDER_MARK = "# Rendered by `govops render"


def header(estate: Estate) -> str:
    rel = f"inventories/{estate.environment}/estate.yml"
    return (
        f"{RENDER_MARK} --env {estate.environment}` from {rel}.\n"
        "# Do not edit: change the estate or the registry and render again.\n"
    )


def agencies(province: Province) -> list[dict[str, Any]]:
    """Agencies' electronic identification codes for the Document Axis.

    The registry does not hold the real codes (each province publishes its own); this
    derives a stable code in the national format `ddd.dd.dd.Hnn` (Decision 20/2020/QĐ-TTg
    shape): the Provincial People's Committee, then each commune's People's Committee.
    """
    code = f"H{province.code:02d}"
    result: list[dict[str, Any]] = [
        {"code": f"000.00.00.{code}", "name": f"UBND {province.name}", "commune": None}
    ]
    for i, c in enumerate(province.communes, start=1):
        result.append(
            {
                "code": f"{i // 100:03d}.{i % 100:02d}.00.{code}",
                "name": f"UBND {c.name}",
                "commune": c.code_str,
            }
        )
    return result
