"""Property: any malformed estate gives a clear InputError (file, key), never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govops.errors import InputError
from govops.registry import load_estate

from .conftest import estate_data
from .fuzz_support import mutated_data

BASE = estate_data()

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.floats(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _load(tmp: Path, text: str) -> None:
    path = tmp / "inventories" / "lab" / "estate.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        load_estate(path)
    except InputError as exc:
        message = str(exc)
        assert str(path) in message
        assert "expected" in message
        assert "Traceback" not in message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_data(BASE, junk))
def test_mutated_estates_fail_cleanly(tmp_path_factory: Any, data: dict[str, Any]) -> None:
    _load(tmp_path_factory.mktemp("e"), yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_fails_cleanly(tmp_path_factory: Any, text: str) -> None:
    _load(tmp_path_factory.mktemp("t"), text)
