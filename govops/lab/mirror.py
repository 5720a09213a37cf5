"""The Debian mirror apt is configured with, read at run time.

The lab image is bootstrapped from the same mirror the machine already trusts; no mirror name
is ever written into the repository.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from debian.deb822 import Deb822

from govops.errors import GovopsError

APT_DIR = Path("/etc/apt")


class MirrorNotFound(GovopsError):
    """No enabled `deb` source for the suite in the files that were read."""


def mirrors_from_deb822(text: str, suite: str) -> list[str]:
    """URIs of the enabled `deb` stanzas of a deb822 `.sources` file that serve `suite`."""
    found: list[str] = []
    # python-debian's parser: comments, continuation lines, case-insensitive field names.
    for stanza in Deb822.iter_paragraphs(text.splitlines()):
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        if suite in stanza.get("suites", "").split():
            found.extend(stanza.get("uris", "").split())
    return found


def mirrors_from_one_line(text: str, suite: str) -> list[str]:
    """`deb [options] URI SUITE COMPONENTS...` lines of a classic sources.list."""
    found: list[str] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            # Options may contain spaces: skip up to the word that closes the bracket.
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2 and words[1] == suite:
            found.append(words[0])
    return found


def _source_files(apt_dir: Path) -> Iterable[Path]:
    parts = apt_dir / "sources.list.d"
    yield from sorted(parts.glob("*.sources"))
    yield apt_dir / "sources.list"
    yield from sorted(parts.glob("*.list"))


def find_mirror(suite: str = "bookworm", apt_dir: Path = APT_DIR) -> str:
    """First enabled `deb` URI that serves `suite`, without a trailing slash."""
    for path in _source_files(apt_dir):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        parse = mirrors_from_deb822 if path.suffix == ".sources" else mirrors_from_one_line
        for uri in parse(text, suite):
            return uri.rstrip("/")
    raise MirrorNotFound(f"no enabled 'deb' source for suite {suite!r} under {apt_dir}")
