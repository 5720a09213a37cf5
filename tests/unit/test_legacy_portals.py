"""The old portals: one domain per old province, and the path mapping to the national portal."""

from __future__ import annotations

from pathlib import Path

import pytest

from govops.errors import InputError
from govops.registry import legacy_provinces
from govops.registry.legacy_portals import (
    legacy_portal_domain,
    legacy_portal_domains,
    legacy_portals,
    national_target,
    nginx_rules,
    slug,
)

HOME = "/p/home/dvc-trang-chu.html"


def test_every_old_province_has_its_own_domain() -> None:
    domains = {legacy_portal_domain(lp) for lp in legacy_provinces()}
    assert len(domains) == 63
    assert legacy_portal_domain("02") == "dichvucong.hagiang.gov.vn"
    assert legacy_portal_domain("Bà Rịa - Vũng Tàu") == "dichvucong.bariavungtau.gov.vn"
    assert legacy_portal_domain("79") == "dichvucong.hochiminh.gov.vn"
    assert slug("Đắk Lắk") == "daklak"
    with pytest.raises(KeyError):
        legacy_portal_domain("99")


def test_a_merged_province_serves_its_old_provinces_domains() -> None:
    assert legacy_portal_domains("ho_chi_minh") == {
        "74": "dichvucong.binhduong.gov.vn",
        "77": "dichvucong.bariavungtau.gov.vn",
        "79": "dichvucong.hochiminh.gov.vn",
    }
    assert legacy_portal_domains("tuyen_quang") == {
        "02": "dichvucong.hagiang.gov.vn",
        "08": "dichvucong.tuyenquang.gov.vn",
    }
    assert sum(len(legacy_portal_domains(lp.new_codename)) for lp in legacy_provinces()) >= 63


@pytest.mark.parametrize(
    ("old", "national"),
    [
        ("/", HOME),
        ("/?utm=x", HOME),  # query dropped on an exact path that drops it
        ("/index.html", HOME),
        ("/tim-kiem?keyword=khai+sinh", "/p/home/dvc-tim-kiem.html?keyword=khai+sinh"),
        ("/tim-kiem", "/p/home/dvc-tim-kiem.html"),  # keep, but nothing to keep
        (
            "/tra-cuu-ho-so?ma=H46.22-250628-0001",
            "/p/home/dvc-tra-cuu-ho-so.html?ma=H46.22-250628-0001",
        ),
        ("/thanh-toan?token=abc", "/p/home/dvc-thanh-toan-truc-tuyen.html"),
        # a prefix: one code after it goes along as the rule's parameter
        (
            "/thu-tuc-hanh-chinh/1.001234",
            "/p/home/dvc-tthc-thu-tuc-hanh-chinh.html?ma-thu-tuc=1.001234",
        ),
        ("/dvc/nop-ho-so/2.000908?x=1", "/p/home/dvc-nop-ho-so.html?ma-thu-tuc=2.000908"),
        # anything else after the prefix (a deeper path, an escape) is dropped, never forwarded
        ("/thu-tuc-hanh-chinh/a/b", "/p/home/dvc-tthc-thu-tuc-hanh-chinh.html"),
        ("/thu-tuc-hanh-chinh/%0d%0aSet-Cookie:x", "/p/home/dvc-tthc-thu-tuc-hanh-chinh.html"),
        ("/thu-tuc-hanh-chinh/", "/p/home/dvc-tthc-thu-tuc-hanh-chinh.html"),
        # the exact path without its slash is its own rule, keeping the query
        (
            "/thu-tuc-hanh-chinh?linh-vuc=tu-phap",
            "/p/home/dvc-tthc-thu-tuc-hanh-chinh.html?linh-vuc=tu-phap",
        ),
        ("/tin-tuc/2025/06/sap-nhap", "/p/home/dvc-tin-tuc.html"),
        # a prefix is a segment: /tin-tucx is not under /tin-tuc/
        ("/tin-tucx/1", HOME),
        ("/khong-biet?a=1", HOME),
        ("/TIM-KIEM?keyword=x", HOME),  # paths are case-sensitive, as nginx matches them
    ],
)
def test_national_target(old: str, national: str) -> None:
    assert national_target(old) == national


def test_nginx_rules_exact_first_then_longest_prefix() -> None:
    rules = nginx_rules()
    assert {r["from"] for r in rules["exact"]} >= {"/", "/tim-kiem"}
    lengths = [len(r["regex"]) for r in rules["prefix"]]
    assert lengths == sorted(lengths, reverse=True)
    assert rules["unknown"] == HOME


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ("{match: prefix, from: /tin-tuc, to: /x, query: drop}", "segment boundary"),
        ("{match: exact, from: /a, to: /x, rest_param: id, query: drop}", "only on a prefix"),
        ("{match: exact, from: '/a b', to: /x, query: drop}", "paths"),
        ("{match: exact, from: /a, to: /x, query: sometimes}", "paths"),
    ],
)
def test_bad_mapping_is_one_line_naming_file_and_key(tmp_path: Path, rule: str, error: str) -> None:
    bad = tmp_path / "legacy-portals.yml"
    bad.write_text(f"domain: dichvucong.{{slug}}.gov.vn\nunknown: /\npaths:\n  - {rule}\n")
    with pytest.raises(InputError) as exc:
        legacy_portals(bad)
    assert "legacy-portals.yml:" in str(exc.value) and error in str(exc.value)
