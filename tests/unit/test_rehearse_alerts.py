"""`govops lab rehearse` ends with "alerts firing: N" (issue 17): 0 is a stage passed, more a
stage failed naming the alerts, and a Prometheus that does not answer is not "0"."""

from __future__ import annotations

from pathlib import Path

import pytest

from govops.lab.paths import LabPaths
from govops.lab.rehearse import FIRING_QUERY, Rehearser, StageFailed

Rows = list[dict[str, dict[str, object]]]


class Scripted(Rehearser):
    """A rehearser whose PromQL answers are given (the lab's Prometheus is not started here)."""

    def __init__(self, tmp_path: Path, up: Rows, firing: list[Rows]) -> None:
        super().__init__("lab", ["hue"], "tester", LabPaths(tmp_path), print, alerts_timeout=0)
        self.up, self.firing = up, firing

    def _query(self, expr: str) -> Rows:
        if expr == FIRING_QUERY:
            return self.firing.pop(0) if len(self.firing) > 1 else self.firing[0]
        return self.up


UP: Rows = [{"metric": {"job": "node"}}]


def test_a_silent_lab_says_zero(tmp_path: Path) -> None:
    assert Scripted(tmp_path, UP, [[]]).alerts() == "alerts firing: 0"


def test_alerts_still_firing_fail_the_stage_by_name(tmp_path: Path) -> None:
    firing: Rows = [
        {"metric": {"alertname": "GovopsSystemDown", "province": "hue", "system": "procedures"}},
        {"metric": {"alertname": "GovopsNationalCounterpartDown"}},
    ]
    with pytest.raises(StageFailed) as failed:
        Scripted(tmp_path, UP, [firing]).alerts()
    assert str(failed.value) == (
        "alerts firing: 2 after the rehearsal: "
        "GovopsNationalCounterpartDown(), GovopsSystemDown(hue/procedures)"
    )


def test_an_unanswering_prometheus_is_not_zero(tmp_path: Path) -> None:
    with pytest.raises(StageFailed, match="did not answer"):
        Scripted(tmp_path, [], [[]]).alerts()
