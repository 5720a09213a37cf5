"""Headless Chromium screenshots for tests (the board), and reading a PNG's size."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
)  # fmt: skip


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def screenshot(html: Path, png: Path, tmp: Path, size: tuple[int, int] = (1400, 2400)) -> None:
    """Draw `html` at `size` into `png` (a fresh profile under `tmp`; no network, no sync)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium not found: apt-get install chromium"
    subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}",
         f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
