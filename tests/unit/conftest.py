from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def estate_data(env: str = "lab") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (ROOT / "inventories" / env / "estate.yml").read_text(encoding="utf-8")
    )
    return data


@pytest.fixture
def write_estate(tmp_path: Path) -> Callable[..., Path]:
    """Write an estate (a dict or raw text) as tmp/inventories/<env>/estate.yml."""

    def write(data: dict[str, Any] | str, env: str = "lab") -> Path:
        path = tmp_path / "inventories" / env / "estate.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write
