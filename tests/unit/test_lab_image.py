"""The lab image's identity: package list parsing and the content-hash tag."""

from __future__ import annotations

import re

import pytest

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
    assert all(not u.startswith("ssh") for u in image.DISABLED_UNITS)
