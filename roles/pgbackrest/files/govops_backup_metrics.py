#!/usr/bin/python3
"""pgBackRest's status as Prometheus textfile metrics, for node_exporter (issue 18).

Runs on a zone's backup host (the repository) every minute from a systemd timer installed by
the pgbackrest role: reads `pgbackrest info --output=json` (every stanza; a stanza is a
province's codename, after an optional prefix) and writes the series below into node_exporter's
textfile directory, atomically (a temporary file in the same directory, then a rename), so a
scrape never reads half a file. When pgBackRest fails the file is left as it was: its
govops_backup_metrics_timestamp_seconds grows old, which is what the alert watches.

  govops_backup_last_success_timestamp_seconds{province,type}  newest good backup of the type
  govops_backup_last_duration_seconds{province,type}           how long that backup took
  govops_backup_last_size_bytes{province}     repository bytes the newest backup added
  govops_backup_repository_ok{province}       1 if the stanza's status code is 0 (ok)
  govops_backup_metrics_timestamp_seconds     when this script last succeeded

Python 3 standard library only (the hosts have no pip).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TYPES = ("full", "diff", "incr")
OUTPUT_NAME = "govops_backup.prom"
HELP = {
    "govops_backup_last_success_timestamp_seconds": "End of the newest successful backup, by type.",
    "govops_backup_last_duration_seconds": "Duration of the newest successful backup, by type.",
    "govops_backup_last_size_bytes": "Repository bytes the newest successful backup added.",
    "govops_backup_repository_ok": "1 if pgBackRest reports the stanza ok (status code 0).",
    "govops_backup_metrics_timestamp_seconds": "When the backup metrics were last written.",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def province_of(stanza: str, prefix: str) -> str:
    """The province codename of a stanza (its name without the estate's stanza prefix)."""
    return stanza[len(prefix) :] if prefix and stanza.startswith(prefix) else stanza


def samples(info: Any, prefix: str = "") -> list[tuple[str, dict[str, str], float]]:
    """(metric, labels, value) for each stanza in pgBackRest's `info --output=json`.

    Raises ValueError naming the key when the document is not pgBackRest's info format.
    """
    if not isinstance(info, list):
        raise ValueError(
            f"pgbackrest info: expected a JSON list of stanzas, got {type(info).__name__}"
        )
    out: list[tuple[str, dict[str, str], float]] = []
    for index, stanza in enumerate(info):
        if not isinstance(stanza, dict) or not isinstance(stanza.get("name"), str):
            raise ValueError(f"pgbackrest info: [{index}].name: expected a stanza name")
        province = province_of(stanza["name"], prefix)
        status = stanza.get("status")
        if not isinstance(status, dict) or "code" not in status:
            raise ValueError(
                f"pgbackrest info: [{index}].status.code: expected the stanza's status"
            )
        out.append(
            (
                "govops_backup_repository_ok",
                {"province": province},
                1.0 if status["code"] == 0 else 0.0,
            )
        )
        good = [
            b
            for b in stanza.get("backup") or []
            if isinstance(b, dict) and not b.get("error", False)
        ]
        for kind in TYPES:
            of_kind = [b for b in good if b.get("type") == kind]
            if not of_kind:
                continue
            newest = max(of_kind, key=lambda b: b["timestamp"]["stop"])
            stamp = newest["timestamp"]
            labels = {"province": province, "type": kind}
            out.append(
                ("govops_backup_last_success_timestamp_seconds", labels, float(stamp["stop"]))
            )
            out.append(
                (
                    "govops_backup_last_duration_seconds",
                    labels,
                    float(stamp["stop"] - stamp["start"]),
                )
            )
        if good:
            newest = max(good, key=lambda b: b["timestamp"]["stop"])
            size = newest.get("info", {}).get("repository", {}).get("delta", 0)
            out.append(("govops_backup_last_size_bytes", {"province": province}, float(size)))
    return out


def render(info: Any, prefix: str = "", now: float | None = None) -> str:
    """The textfile: HELP and TYPE once per metric, then its samples, sorted for stable diffs."""
    rows = samples(info, prefix)
    rows.append(
        ("govops_backup_metrics_timestamp_seconds", {}, float(time.time() if now is None else now))
    )
    lines: list[str] = []
    for metric in HELP:
        mine = sorted((_labels(**labels), value) for name, labels, value in rows if name == metric)
        if not mine:
            continue
        lines += [f"# HELP {metric} {HELP[metric]}", f"# TYPE {metric} gauge"]
        lines += [f"{metric}{labels} {value:.0f}" for labels, value in mine]
    return "\n".join(lines) + "\n"


def write_atomically(directory: Path, name: str, text: str) -> Path:
    """Write `text` to directory/name through a temporary file and a rename (mode 0644)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return directory / name


def read_info(command: list[str]) -> Any:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}"
        )
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--directory",
        type=Path,
        default=Path("/var/lib/prometheus/node-exporter"),
        help="node_exporter's textfile directory",
    )
    parser.add_argument(
        "--prefix", default="", help="the estate's stanza prefix (stanza = prefix + province)"
    )
    parser.add_argument(
        "--info-json", type=Path, help="read this file instead of running pgbackrest info"
    )
    parser.add_argument("--pgbackrest", default="/usr/bin/pgbackrest", help="the pgbackrest binary")
    args = parser.parse_args(argv)
    try:
        if args.info_json:
            info = json.loads(args.info_json.read_text(encoding="utf-8"))
        else:
            info = read_info([args.pgbackrest, "--output=json", "--log-level-file=off", "info"])
        path = write_atomically(args.directory, OUTPUT_NAME, render(info, args.prefix))
    except (
        OSError,
        ValueError,
        RuntimeError,
        KeyError,
        TypeError,
        subprocess.TimeoutExpired,
    ) as exc:
        print(f"govops-backup-metrics: {exc}", file=sys.stderr)
        return 1
    print(f"govops-backup-metrics: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
