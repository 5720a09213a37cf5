"""Operations and adapters: the catalog, the lab stand-ins' adapter, resolution of an
operation to a request, and bad adapter files (exit 2 naming file, line and key)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from govops.adapters import (
    ResolveError,
    adapter_for,
    interface_catalog,
    load_adapter,
    resolve,
    standin_adapter_path,
)
from govops.adapters.estate import front_url, request_for
from govops.errors import InputError
from govops.registry import load_estate
from govops.runbook.loader import lint

from .conftest import ROOT

STANDIN = ROOT / "govops/registry/data/adapters/standin"
EXAMPLE = ROOT / "docs/adapters/vendor-procedures.example.yml"


def test_the_catalog_has_every_system_and_counterpart_of_the_registry() -> None:
    cat = interface_catalog()
    assert set(cat.systems) == {"procedures", "documents", "lgsp", "reporting", "meetings"}
    estate = load_estate(ROOT / "inventories/lab/estate.yml")
    assert set(cat.counterparts) == set(estate.counterparts)
    submit = cat.systems["procedures"].operations["submit_dossier"]
    assert (submit.writes, submit.idempotent, submit.synthetic) == (True, False, True)
    assert "withdraw" in cat.systems["procedures"].operations
    assert cat.counterparts["portal"].operations["close_interface"].idempotent


def test_every_operation_the_runbooks_call_is_in_the_standin_adapter() -> None:
    called: set[tuple[str, str, str]] = set()
    for name in ("cutover", "rehearsal", "rollback"):
        runbook = lint(ROOT / f"runbooks/{name}.yml").runbook
        assert runbook is not None
        for _, step in runbook.steps():
            for action in (step.action, step.verify, step.rollback):
                if action.executor == "operation":
                    args = action.args
                    kind = "systems" if "system" in args else "counterparts"
                    target = args.get("system") or args["counterpart"]
                    called.add((kind, target, args["operation"]))
    assert len(called) >= 20
    for kind, target, operation in called:
        assert operation in adapter_for(kind, target).operations, (kind, target, operation)


def test_the_standin_payment_declares_both_safe_modes() -> None:
    op = adapter_for("systems", "procedures").operations["test_payment"]
    assert op.payment_modes == ["test_mode", "zero_authorization"]


def test_resolution_quotes_paths_encodes_queries_and_keeps_values() -> None:
    napd = adapter_for("counterparts", "napd")
    req = resolve(
        napd,
        "declare_admin_units",
        {"province": "a/b c", "province_name": "Huế", "communes": ["19768", "19771"]},
        "https://national-portal/",
    )
    assert (req.method, req.url) == ("PUT", "https://national-portal/api/admin-units/a%2Fb%20c")
    assert req.body == {"province_name": "Huế", "communes": ["19768", "19771"]}
    inbox = resolve(adapter_for("systems", "documents"), "inbox", {"agency": "000.01 &x"}, "h://x")
    assert inbox.url == "h://x/api/inbox?agency=000.01+%26x" and inbox.body is None
    # A body input not given is left out (the stand-in's payment defaults apply).
    pay = resolve(adapter_for("systems", "procedures"), "test_payment", {"amount": 0}, "h://p")
    assert pay.body == {"amount": 0} and pay.expect_status == [201]


def test_resolution_refuses_what_the_adapter_lacks_or_an_input_missing() -> None:
    with pytest.raises(ResolveError, match="does not implement withdraw"):
        resolve(adapter_for("systems", "meetings"), "withdraw", {}, "https://x")
    with pytest.raises(ResolveError, match="inputs missing: province"):
        resolve(adapter_for("counterparts", "portal"), "close_interface", {}, "https://x")


def test_the_estate_names_where_each_operation_goes() -> None:
    production = load_estate(ROOT / "inventories/production/estate.yml")
    req = request_for(production, "systems", "procedures", "ready", {}, "ho_chi_minh")
    assert req.url == "https://ho-chi-minh-procedures.gov.example/readyz"
    req = request_for(
        production, "counterparts", "portal", "interface_state", {"province": "hue"}, "hue"
    )
    assert req.url == f"{production.counterparts['portal'].url}/api/provinces/hue/portal-interface"
    lab = load_estate(ROOT / "inventories/lab/estate.yml")
    assert front_url(lab, "systems", "lgsp", "hue") == "https://hue-lgsp"


def test_the_documented_example_adapter_loads_and_moves_the_host() -> None:
    adapter = load_adapter(EXAMPLE)
    assert adapter.interface == "systems.procedures" and adapter.base
    req = resolve(
        adapter,
        "submit_dossier",
        {"commune_code": "19768"},
        "https://unused",
        {"label": "hue", "province": "hue", "dot_domain": ".gov.example"},
    )
    assert req.url.startswith("https://dvc.hue.gov.example:8443/")


def _bad(tmp_path: Path, text: str) -> InputError:
    path = tmp_path / "adapter.yml"
    path.write_text(text, encoding="utf-8")
    load_adapter.cache_clear()
    with pytest.raises(InputError) as caught:
        load_adapter(path)
    return caught.value


@pytest.mark.parametrize(
    ("text", "line", "key", "expected"),
    [
        (
            "interface: systems.procedures\nvendor: v\noperations:\n"
            "  submitt_dossier: {path: /x}\n",
            4,
            "operations.submitt_dossier",
            "an operation of systems.procedures",
        ),
        (
            "interface: systems.procedures\nvendor: v\noperations:\n"
            "  ready: {path: /x, method: FETCH}\n",
            4,
            "operations.ready.method",
            "'GET'",
        ),
        (
            "interface: systems.procedures\nvendor: v\noperations:\n"
            "  ready:\n    path: /x/{{ nope }}\n",
            4,
            "operations.ready",
            "placeholders among the inputs of ready",
        ),
        (
            "interface: systems.nowhere\nvendor: v\noperations: {}\n",
            1,
            "interface",
            "a system or counterpart of the operation catalog",
        ),
        (
            "interface: systems.procedures\nvendor: v\noperations:\n"
            "  ready: {path: /x, success: [{path: status}]}\n",
            4,
            "operations.ready",
            "at least one check",
        ),
        (
            "interface: systems.procedures\nvendor: v\nbase: ftp://x\noperations: {}\n",
            3,
            "base",
            "match pattern",
        ),
    ],
)
def test_a_bad_adapter_file_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, expected: str
) -> None:
    error = _bad(tmp_path, text)
    message = str(error).splitlines()[0]
    assert message.startswith(f"{tmp_path / 'adapter.yml'}:{line}: {key}: expected"), message
    assert expected in message, message


def test_estate_check_exits_2_on_a_bad_adapter_the_estate_names(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "inventories/lab", tmp_path / "inventories/lab")
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")
    adapter = yaml.safe_load(standin_adapter_path("counterparts", "portal").read_text("utf-8"))
    adapter["operations"]["close_interface"]["method"] = "SHUT"
    folder = tmp_path / "inventories/lab"
    (folder / "portal.yml").write_text(yaml.safe_dump(adapter), encoding="utf-8")
    estate = folder / "estate.yml"
    estate.write_text(
        estate.read_text(encoding="utf-8").replace(
            'portal: {url: "https://national-portal"}',
            'portal: {url: "https://national-portal", adapter: portal.yml}',
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "govops"),
            "estate",
            "check",
            "--env",
            "lab",
            "--province",
            "hue",
        ],
        cwd=tmp_path,
        env={**os.environ, "GOVOPS_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{folder / 'portal.yml'}:" in result.stderr + result.stdout
    assert "operations.close_interface.method: expected" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_lint_refuses_an_operation_the_catalog_lacks(tmp_path: Path) -> None:
    text = (ROOT / "runbooks/rollback.yml").read_text(encoding="utf-8")
    broken = text.replace("operation: open_interface", "operation: reopen_interface", 1)
    assert broken != text
    path = tmp_path / "rollback.yml"
    path.write_text(broken, encoding="utf-8")
    errors = "\n".join(str(e) for e in lint(path, ROOT).errors)
    assert "operation: one of register_agency_codes" in errors, errors
    assert ".action.with" in errors and "rollback.yml:" in errors
