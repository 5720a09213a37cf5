"""Durations, deadlines, templating, error budgets and wave planning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govops.runbook.model import Waves, allowed_errors
from govops.runbook.scheduler import plan_waves, waves_of
from govops.runbook.templating import TemplateError, render_value, variables_of
from govops.runbook.timeutil import Deadline, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("250ms", 0.25),
        (7, 7),
        ("1.5s", 1.5),
        ("1d4h", 100800),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m5", "-5s", "5x", True, None, "1h 2q"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.integers(min_value=60, max_value=10**7))
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_deadlines_absolute_and_relative() -> None:
    t0 = datetime(2025, 6, 25, 1, 0, tzinfo=UTC)
    absolute = Deadline.parse("2025-06-27T17:00:00+07:00")
    assert not absolute.relative
    assert absolute.resolve(t0) == datetime(2025, 6, 27, 10, 0, tzinfo=UTC)
    relative = Deadline.parse("T0+1h30m")
    assert relative.relative and relative.resolve(t0) == t0 + timedelta(minutes=90)
    assert Deadline.parse("T0 - 10m").resolve(t0) == t0 - timedelta(minutes=10)
    assert Deadline.parse("T0").resolve(t0) == t0
    with pytest.raises(ValueError, match="UTC offset"):
        Deadline.parse("2025-06-27T17:00:00")  # whose 17:00?
    with pytest.raises(ValueError):
        Deadline.parse("tomorrow")


def test_native_templates_keep_types() -> None:
    context = {
        "communes": [{"code": "00001"}, {"code": "00002"}],
        "commune_count": 2,
        "label": "ho-chi-minh",
    }
    value = render_value(
        {
            "codes": "{{ communes | map(attribute='code') | list }}",
            "n": "{{ commune_count + 1 }}",
            "url": "https://{{ label }}-procedures/api",
            "list": ["{{ label }}", 3],
        },
        context,
    )
    assert value == {
        "codes": ["00001", "00002"],
        "n": 3,
        "url": "https://ho-chi-minh-procedures/api",
        "list": ["ho-chi-minh", 3],
    }


def test_templates_are_strict_and_sandboxed() -> None:
    with pytest.raises(TemplateError, match="undefined"):
        render_value("https://{{ lable }}-x", {"label": "hue"})
    with pytest.raises(TemplateError):
        render_value("{{ ''.__class__.__mro__ }}", {})
    assert variables_of("{{ a }} and {{ b.c }}") == {"a", "b"}
    with pytest.raises(TemplateError, match="valid template"):
        variables_of("{{ unclosed")


@pytest.mark.parametrize(
    ("budget", "size", "allowed"),
    [(0, 5, 0), (2, 5, 2), ("10%", 5, 0), ("50%", 5, 2), ("100%", 3, 3)],
)
def test_error_budget(budget: int | str, size: int, allowed: int) -> None:
    assert allowed_errors(budget, size) == allowed


def test_waves_pilot_then_batches_in_code_order() -> None:
    spec = Waves.model_validate(
        {"pilot": ["hue", "atlantis"], "batch_size": 2, "max_concurrency": 2, "max_errors": "50%"}
    )
    selected = ["ha_noi", "tuyen_quang", "hue", "da_nang", "ho_chi_minh"]
    planned = plan_waves(spec, selected)
    assert planned == [["hue"], ["ha_noi", "tuyen_quang"], ["da_nang", "ho_chi_minh"]]
    waves = waves_of(spec, planned)
    assert waves[0].pilot and waves[0].max_errors == 0
    assert not waves[1].pilot and waves[1].max_errors == 1
    no_pilot = plan_waves(spec.model_copy(update={"pilot": ()}), selected)
    assert no_pilot[0] == ["ha_noi", "tuyen_quang"]


@given(
    st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]), unique=True),
    st.integers(min_value=1, max_value=4),
)
def test_waves_cover_each_province_once(selected: list[str], size: int) -> None:
    spec = Waves.model_validate(
        {"pilot": ["c"], "batch_size": size, "max_concurrency": 1, "max_errors": 0}
    )
    planned = plan_waves(spec, selected)
    flat = [p for wave in planned for p in wave]
    assert sorted(flat) == sorted(selected)
    assert all(0 < len(w) <= max(size, 1) for w in planned[1 if "c" in selected else 0 :])
