"""Estate files, prober endpoint files and the prober's JSON config, fuzzed.

`govops registry validate` on a damaged estate, `govops monitoring prober-config --endpoints`
on a damaged endpoints file, and the prober's own `--config` on a damaged JSON config: exit 2
naming the file (the line and key where the file has them), no traceback, bounded time.
(tests/unit/test_estate_fuzz.py damages the estate's data; here its text.)
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from exporters.govops_prober import __main__ as prober_main
from exporters.govops_prober.config import ConfigError, load_config
from govops.errors import InputError
from govops.registry import load_estate

from .conftest import ROOT
from .fuzz_support import FUZZ, assert_clean, errors_of, invoke, junk_values, mutated_text

LAB_ESTATE = (ROOT / "inventories" / "lab" / "estate.yml").read_text(encoding="utf-8")
ENDPOINTS = (
    "systems:\n"
    "  hue:\n"
    "    procedures: https://127.0.0.1:8443\n"
    "    documents: http://localhost:8080/docs\n"
    "counterparts:\n"
    "  portal: https://portal.example:8443\n"
    "  sso: https://sso.example\n"
)


def _root(tmp: Path, estate: str) -> Path:
    """A checkout of its own (GOVOPS_ROOT): inventories/lab/estate.yml is `estate`."""
    (tmp / "inventories" / "lab").mkdir(parents=True)
    (tmp / "inventories" / "lab" / "estate.yml").write_text(estate, encoding="utf-8")
    (tmp / "Pulumi.yaml").write_text("name: govops\n", encoding="utf-8")
    return tmp


@FUZZ
@given(text=mutated_text(LAB_ESTATE))
def test_damaged_estate_text(tmp_path_factory: Any, text: str) -> None:
    root = _root(tmp_path_factory.mktemp("root"), text)
    result = invoke(["registry", "validate", "--env", "lab"], env={"GOVOPS_ROOT": str(root)})
    assert_clean(result)
    if result.exit_code == 2:
        assert errors_of(result.output, "estate.yml"), result.output


def test_a_national_range_too_small_for_its_hosts_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(LAB_ESTATE)
    data["network"]["national"] = data["network"]["national"].rsplit("/", 1)[0] + "/30"
    root = _root(tmp_path, yaml.safe_dump(data))
    result = invoke(["registry", "validate", "--env", "lab"], env={"GOVOPS_ROOT": str(root)})
    assert result.exit_code == 2, result.output
    assert "network.national: expected a range with room for host monitor" in result.output
    with pytest.raises(InputError) as exc:
        load_estate(root / "inventories" / "lab" / "estate.yml")
    assert exc.value.line is not None


# -- endpoints files ---------------------------------------------------------------------------
@FUZZ
@given(text=mutated_text(ENDPOINTS))
def test_damaged_endpoints_files(tmp_path_factory: Any, text: str) -> None:
    path = tmp_path_factory.mktemp("ep") / "endpoints.yml"
    path.write_text(text, encoding="utf-8")
    result = invoke(["monitoring", "prober-config", "--env", "lab", "--endpoints", str(path)])
    assert_clean(result)
    if result.exit_code == 2:
        assert errors_of(result.output, "endpoints.yml"), result.output


@FUZZ
@given(data=junk_values())
def test_endpoints_files_of_any_shape(tmp_path_factory: Any, data: Any) -> None:
    path = tmp_path_factory.mktemp("ep") / "endpoints.yml"
    shape = random.Random(repr(data)).choice(["top", "systems", "province", "counterparts"])
    wrapped = {
        "top": data,
        "systems": {"systems": data},
        "province": {"systems": {"hue": data}},
        "counterparts": {"counterparts": data},
    }[shape]
    path.write_text(yaml.safe_dump(wrapped, allow_unicode=True), encoding="utf-8")
    result = invoke(["monitoring", "prober-config", "--env", "lab", "--endpoints", str(path)])
    assert_clean(result)
    if result.exit_code == 2:
        assert errors_of(result.output, "endpoints.yml"), result.output


def test_the_prober_reads_a_damaged_endpoints_file_as_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "endpoints.yml"
    path.write_text("systems:\n  hue: {procedures: 'http://[::1'}\n", encoding="utf-8")
    monkeypatch.setattr(prober_main, "run", lambda *a: pytest.fail("must not serve"))
    assert prober_main.main(["--env", "lab", "--endpoints", str(path)]) == 2


# -- the prober's JSON config ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("cfg") / "prober.json"
    result = invoke(["monitoring", "prober-config", "--env", "lab", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


JSON_NASTY = [
    None,
    True,
    -1,
    0,
    10**400,
    1e308,
    "",
    "x",
    "http://[::1",
    "https://h:99999",
    "ftp://x",
    [],
    {},
    ["12345"],
    ["١٢٣٤٥"],
]


@FUZZ
@given(st.data())
def test_damaged_prober_configs(
    good_config: dict[str, Any], tmp_path_factory: Any, data: st.DataObject
) -> None:
    config = json.loads(json.dumps(good_config))
    keys = [k for k in config if k != "provinces"] + ["provinces.hue", "provinces.hue.systems"]
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(keys))
        value = data.draw(st.sampled_from(JSON_NASTY) | junk_values())
        parent, _, last = key.rpartition(".")
        target = config
        for part in parent.split(".") if parent else []:
            target = target.get(part, {}) if isinstance(target, dict) else {}
        if isinstance(target, dict):
            if data.draw(st.booleans()):
                target[last] = value
            else:
                target.pop(last, None)
    path = tmp_path_factory.mktemp("cfg") / "prober.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)) and "expected" in str(exc), exc


@pytest.mark.parametrize(
    "text",
    ["", "{", "[1]", '{"timeout_seconds": NaN}', '{"timeout_seconds": Infinity}', "[" * 100_000],
)
def test_unreadable_prober_configs(
    tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prober.json"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(prober_main, "run", lambda *a: pytest.fail("must not serve"))
    assert prober_main.main(["--config", str(path)]) == 2


def test_the_fuzz_bases_are_clean(tmp_path: Path) -> None:
    """Otherwise every mutation would fail for the same reason and the fuzz test nothing."""
    root = _root(tmp_path, LAB_ESTATE)
    valid = invoke(["registry", "validate", "--env", "lab"], env={"GOVOPS_ROOT": str(root)})
    assert valid.exit_code == 0, valid.output
    path = tmp_path / "endpoints.yml"
    path.write_text(ENDPOINTS, encoding="utf-8")
    ok = invoke(["monitoring", "prober-config", "--env", "lab", "--endpoints", str(path)])
    assert ok.exit_code == 0, ok.output
