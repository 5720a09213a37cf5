"""`govops lab rehearse`'s backups stage (issue 18): every province needs a backup, a passing
restore drill and a streaming standby, as the lab's Prometheus sees them; a province missing any
fails the stage by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from govops.lab.paths import LabPaths
from govops.lab.rehearse import BACKUP_QUERIES, Rehearser, StageFailed, backup_lines


def _rows(values: dict[str, float]) -> list[dict[str, object]]:
    return [{"metric": {"province": p}, "value": [0, str(v)]} for p, v in values.items()]


class Scripted(Rehearser):
    def __init__(self, tmp_path: Path, answers: dict[str, dict[str, float]]) -> None:
        super().__init__(
            "lab", ["hue", "tuyen_quang"], "tester", LabPaths(tmp_path), print, backups_timeout=0
        )
        self.answers = answers

    def _query(self, expr: str):  # type: ignore[no-untyped-def]
        name = next(k for k, q in BACKUP_QUERIES.items() if q == expr)
        return _rows(self.answers.get(name, {}))


HEALTHY = {
    "backup": {"hue": 1_796_306_520.0, "tuyen_quang": 1_796_306_580.0},
    "drill": {"hue": 1.0, "tuyen_quang": 1.0},
    "standbys": {"hue": 1.0, "tuyen_quang": 1.0},
    "lag": {"hue": 0.0, "tuyen_quang": 2.4},
}


def test_every_province_verified_passes(tmp_path: Path) -> None:
    assert Scripted(tmp_path, HEALTHY).backups() == (
        "2/2 provinces with a verified backup and a streaming standby"
    )


@pytest.mark.parametrize(
    ("metric", "value", "shown"),
    [
        ("drill", 0.0, "drill FAILED"),
        ("drill", None, "no drill yet"),
        ("standbys", 0.0, "no standby streaming"),
        ("backup", None, "newest none"),
    ],
)
def test_a_province_missing_one_fails_by_name(
    tmp_path: Path, metric: str, value: float | None, shown: str
) -> None:
    answers = {k: dict(v) for k, v in HEALTHY.items()}
    if value is None:
        del answers[metric]["hue"]
    else:
        answers[metric]["hue"] = value
    with pytest.raises(StageFailed, match=r"without a verified backup and a standby: hue$"):
        Scripted(tmp_path, answers).backups()
    lines, missing = backup_lines(["hue"], answers)
    assert missing == ["hue"] and shown in lines[0]


def test_line_reads_like_a_summary() -> None:
    lines, missing = backup_lines(["tuyen_quang"], HEALTHY)
    assert missing == []
    assert lines == [
        "backup tuyen_quang: newest 2026-12-03 14:03 UTC, drill ok, standby streaming (lag 2 s)"
    ]


def test_from_starts_at_a_later_stage(tmp_path: Path) -> None:
    seen: list[str] = []

    class Recording(Scripted):
        def cutover(self) -> str:
            seen.append("cutover")
            return "run completed"

        def alerts(self) -> str:
            seen.append("alerts")
            return "alerts firing: 0"

    result = Recording(tmp_path, HEALTHY).run(start="cutover")
    assert [s.name for s in result.stages] == ["cutover", "backups", "alerts"]
    assert seen == ["cutover", "alerts"] and result.ok
