"""The mirror is read from apt's configuration at run time, never written in the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

from govops.lab.mirror import (
    MirrorNotFound,
    find_mirror,
    mirrors_from_deb822,
    mirrors_from_one_line,
)

DEB822 = """\
Types: deb
# a comment inside the stanza
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
"""

DISABLED_FIRST = """\
Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm

Types: deb-src deb
URIs:
 http://second.example/debian
Suites: bookworm
"""


def test_deb822_picks_the_suite_not_its_updates_or_security() -> None:
    assert mirrors_from_deb822(DEB822, "bookworm") == ["http://mirror.example/debian/"]
    assert mirrors_from_deb822(DEB822, "bookworm-security") == [
        "http://security.example/debian-security"
    ]


def test_deb822_skips_disabled_stanzas_and_joins_continuation_lines() -> None:
    assert mirrors_from_deb822(DISABLED_FIRST, "bookworm") == ["http://second.example/debian"]


def test_deb_src_only_is_not_a_mirror() -> None:
    text = "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n"
    assert mirrors_from_deb822(text, "bookworm") == []


def test_one_line_format_with_options() -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib\n"
        "deb http://two.example/debian bookworm-updates main\n"
    )
    assert mirrors_from_one_line(text, "bookworm") == ["http://one.example/debian"]


def test_find_mirror_prefers_sources_files_and_strips_the_slash(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list").write_text("deb http://legacy.example/debian bookworm main\n")
    assert find_mirror("bookworm", tmp_path) == "http://mirror.example/debian"


def test_find_mirror_falls_back_to_sources_list(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://legacy.example/debian bookworm main\n")
    assert find_mirror("bookworm", tmp_path) == "http://legacy.example/debian"


def test_no_mirror_is_an_operational_error(tmp_path: Path) -> None:
    with pytest.raises(MirrorNotFound, match="bookworm") as caught:
        find_mirror("bookworm", tmp_path)
    assert caught.value.exit_code == 1
