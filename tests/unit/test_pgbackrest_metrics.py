"""The pgbackrest role's metrics script: pgBackRest's `info --output=json` turned into the
textfile metrics of the issue 18 contract, and written atomically — pure, no host."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles/pgbackrest/files/govops_backup_metrics.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("govops_backup_metrics", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


metrics = _load()


def _backup(
    label: str, kind: str, start: int, stop: int, delta: int, *, error: bool = False
) -> dict[str, object]:
    return {
        "archive": {"start": "000000010000000000000002", "stop": "000000010000000000000002"},
        "backrest": {"format": 5, "version": "2.45"},
        "database": {"id": 1, "repo-key": 1},
        "error": error,
        "info": {
            "delta": 38189775,
            "repository": {"delta": delta, "size": 5128944},
            "size": 38189775,
        },
        "label": label,
        "lsn": {"start": "0/2000028", "stop": "0/2000100"},
        "prior": None if kind == "full" else "20261203-010000F",
        "reference": None if kind == "full" else ["20261203-010000F"],
        "timestamp": {"start": start, "stop": stop},
        "type": kind,
    }


# `pgbackrest info --output=json` of pgBackRest 2.45 (Debian 12), two stanzas on one
# repository: hue with two fulls, a diff and an incr (and a failed incr), tuyen_quang created
# but never backed up (status code 2, "no valid backups").
INFO = [
    {
        "archive": [
            {
                "database": {"id": 1, "repo-key": 1},
                "id": "15-1",
                "max": "000000010000000000000009",
                "min": "000000010000000000000001",
            }
        ],
        "backup": [
            _backup("20261129-010000F", "full", 1796000000, 1796000040, 5000000),
            _backup("20261203-010000F", "full", 1796306356, 1796306360, 5128944),
            _backup("20261203-010000F_20261203-020000D", "diff", 1796310000, 1796310002, 15920),
            _backup("20261203-010000F_20261203-033000I", "incr", 1796315400, 1796315401, 8192),
            _backup(
                "20261203-010000F_20261203-043000I", "incr", 1796319000, 1796319009, 1, error=True
            ),
        ],
        "cipher": "aes-256-cbc",
        "db": [{"id": 1, "repo-key": 1, "system-id": 7444123456789012345, "version": "15"}],
        "name": "hue",
        "repo": [{"cipher": "aes-256-cbc", "key": 1, "status": {"code": 0, "message": "ok"}}],
        "status": {"code": 0, "lock": {"backup": {"held": False}}, "message": "ok"},
    },
    {
        "archive": [],
        "backup": [],
        "cipher": "aes-256-cbc",
        "db": [{"id": 1, "repo-key": 1, "system-id": 7444123456789099999, "version": "15"}],
        "name": "tuyen_quang",
        "repo": [
            {
                "cipher": "aes-256-cbc",
                "key": 1,
                "status": {"code": 2, "message": "no valid backups"},
            }
        ],
        "status": {"code": 2, "lock": {"backup": {"held": False}}, "message": "no valid backups"},
    },
]


def test_newest_good_backup_of_each_type() -> None:
    text = metrics.render(json.loads(json.dumps(INFO)), now=1796320000)
    assert (
        'govops_backup_last_success_timestamp_seconds{province="hue",type="full"} 1796306360\n'
        in text
    )
    assert (
        'govops_backup_last_success_timestamp_seconds{province="hue",type="diff"} 1796310002\n'
        in text
    )
    # The failed incr (error: true) is not a success: the one before it is.
    assert (
        'govops_backup_last_success_timestamp_seconds{province="hue",type="incr"} 1796315401\n'
        in text
    )
    assert 'govops_backup_last_duration_seconds{province="hue",type="full"} 4\n' in text
    assert 'govops_backup_last_size_bytes{province="hue"} 8192\n' in text
    assert "govops_backup_metrics_timestamp_seconds 1796320000\n" in text


def test_repository_ok_follows_the_stanza_status() -> None:
    text = metrics.render(INFO, now=0)
    assert 'govops_backup_repository_ok{province="hue"} 1\n' in text
    assert 'govops_backup_repository_ok{province="tuyen_quang"} 0\n' in text
    # A stanza without backups has no last-success series (absent, not a fake zero).
    assert 'province="tuyen_quang",type=' not in text


def test_help_and_type_once_per_metric() -> None:
    text = metrics.render(INFO, now=0)
    for name in metrics.HELP:
        assert text.count(f"# TYPE {name} gauge") == 1


def test_stanza_prefix_is_dropped_from_the_province() -> None:
    prefixed = [{**INFO[0], "name": "prod_hue"}]
    text = metrics.render(prefixed, prefix="prod_", now=0)
    assert 'govops_backup_repository_ok{province="hue"} 1' in text


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"name": "hue"}, "JSON list"),
        ([{"backup": []}], "[0].name"),
        ([{"name": "hue"}], "[0].status.code"),
    ],
)
def test_not_pgbackrest_info_names_the_key(doc: object, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("]", r"\]")):
        metrics.samples(doc)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / metrics.OUTPUT_NAME).write_text("old\n", encoding="utf-8")
    path = metrics.write_atomically(tmp_path, metrics.OUTPUT_NAME, "new\n")
    assert path.read_text(encoding="utf-8") == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [metrics.OUTPUT_NAME]
    assert path.stat().st_mode & 0o777 == 0o644


def test_main_reads_a_file_and_keeps_the_old_metrics_on_bad_input(tmp_path: Path) -> None:
    good = tmp_path / "info.json"
    good.write_text(json.dumps(INFO), encoding="utf-8")
    out = tmp_path / "textfile"
    out.mkdir()
    assert metrics.main(["--directory", str(out), "--info-json", str(good)]) == 0
    before = (out / metrics.OUTPUT_NAME).read_text(encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}', encoding="utf-8")
    assert metrics.main(["--directory", str(out), "--info-json", str(bad)]) == 1
    assert (out / metrics.OUTPUT_NAME).read_text(encoding="utf-8") == before
