"""The lab image's identity: package list parsing and the content-hash tag."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from govops.lab import image
from govops.lab.image import image_ref, image_tag, load_packages, read_packages

REQUIRED = {
    "python3",
    "openssh-server",
    "systemd",
    "systemd-sysv",
    "sudo",
    "dbus",
    "iproute2",
    "ca-certificates",
    "nginx",
    "postgresql-15",
    "python3-psycopg",
    "python3-yaml",
    "nftables",
    "logrotate",
    "cron",
    "prometheus-node-exporter",
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-blackbox-exporter",
    "prometheus-postgres-exporter",
    "prometheus-nginx-exporter",
    "curl",
    "openssl",
    "rsync",
    "less",
}


def test_package_file_lists_everything_the_roles_need() -> None:
    packages = set(load_packages())
    assert packages >= REQUIRED
    assert packages & {"chrony", "systemd-timesyncd"}


def test_comments_blanks_and_duplicates_are_dropped_order_kept() -> None:
    text = "# header\nnginx\n\ncurl   # trailing comment\nnginx\n  less  \n"
    assert read_packages(text) == ["nginx", "curl", "less"]


def test_a_malformed_name_is_reported_with_its_line() -> None:
    with pytest.raises(ValueError, match=r":2: 'Bad Name'"):
        read_packages("nginx\nBad Name\n")


def test_tag_is_12_hex_and_ignores_order_and_duplicates() -> None:
    tag = image_tag(["nginx", "curl"])
    assert re.fullmatch(r"[0-9a-f]{12}", tag)
    assert image_tag(["curl", "nginx", "curl"]) == tag


def test_tag_changes_with_the_package_set() -> None:
    assert image_tag(["nginx", "curl"]) != image_tag(["nginx", "curl", "less"])


def test_tag_changes_with_the_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    before = image_tag(["nginx"])
    monkeypatch.setattr(image, "RECIPE_VERSION", image.RECIPE_VERSION + "-next")
    assert image_tag(["nginx"]) != before
    monkeypatch.undo()
    monkeypatch.setattr(image, "DISABLED_UNITS", (*image.DISABLED_UNITS, "cron.service"))
    assert image_tag(["nginx"]) != before


def test_image_ref_is_local() -> None:
    assert image_ref("0123456789ab") == "localhost/govops-lab:0123456789ab"


def test_the_image_carries_no_key_and_generates_its_host_key_at_boot() -> None:
    unit = image.EXTRA_FILES[f"etc/systemd/system/{image.HOSTKEY_UNIT_NAME}"]
    assert "Before=ssh.service" in unit
    assert f"ConditionPathExists=!{image.HOSTKEY_PATH}" in unit
    assert "ssh-keygen" in unit


def test_services_are_disabled_not_masked() -> None:
    # Roles enable what each host needs; a masked unit could not be enabled by them.
    assert "postgresql.service" in image.DISABLED_UNITS
    assert "nginx.service" in image.DISABLED_UNITS
    assert "named.service" in image.DISABLED_UNITS  # the dns host's role starts it
    assert all(not u.startswith("ssh") for u in image.DISABLED_UNITS)


# debootstrap's own output (bookworm, minbase), as the build log keeps it.
DEBOOTSTRAP = """\
I: Retrieving InRelease
I: Checking Release signature
I: Valid Release signature (key id 4CB50190207B4758A3F73A796ED0E7B82643E131)
I: Retrieving Packages
I: Validating Packages
I: Resolving dependencies of required packages...
I: Retrieving adduser 3.134
I: Validating adduser 3.134
I: Retrieving apt 2.6.1
I: Validating apt 2.6.1
I: Extracting adduser...
I: Extracting apt...
I: Installing core packages...
I: Unpacking required packages...
I: Unpacking adduser...
I: Configuring required packages...
I: Configuring adduser...
I: Base system installed successfully.
"""


def test_a_piped_build_says_each_debootstrap_stage_and_keeps_talking() -> None:
    progress = image.PlainProgress(started=100.0, every=15.0)
    said = []
    for i, line in enumerate(DEBOOTSTRAP.splitlines(keepends=True)):
        text = progress.line(line, now=100.0 + i)  # one line a second
        if text is not None:
            said.append(text)
    stages = [s.split("] ", 1)[1].split(" ", 1)[0] for s in said]
    # Each stage once when it begins (Retrieving comes back after Valid…, and so on).
    assert stages == [
        "Retrieving", "Checking", "Valid", "Retrieving", "Validating", "Resolving",
        "Retrieving", "Validating", "Retrieving", "Validating", "Extracting", "Installing",
        "Unpacking", "Configuring", "Base",
    ]  # fmt: skip
    assert said[-1] == "lab image: debootstrap [18, 17 s] Base system installed successfully."
    # A long stage (hundreds of packages retrieved) still prints every 15 s.
    long = image.PlainProgress(started=0.0, every=15.0)
    ticks = [long.line(f"I: Retrieving p{i} 1.0\n", now=float(i)) for i in range(60)]
    assert [i for i, t in enumerate(ticks) if t is not None] == [0, 15, 30, 45]
    assert long.line("not a debootstrap message\n", now=61.0) is None


def test_a_piped_build_step_prints_its_start_and_end() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=80)
    ran: list[bool] = []
    image._step(console, "writing the rootfs tarball", lambda: ran.append(True))
    lines = buffer.getvalue().splitlines()
    assert ran == [True]
    assert lines[0] == "lab image: writing the rootfs tarball…"
    assert re.fullmatch(r"lab image: writing the rootfs tarball: done \(\d+ s\)", lines[1])
