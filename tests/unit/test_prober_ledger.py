"""The commune rotation: every commune gets its test dossier within the period."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from exporters.govops_prober.ledger import Ledger

COMMUNES = tuple(f"{i:05d}" for i in range(1, 169))  # Ho Chi Minh City's 168


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=300),
    interval=st.sampled_from([15.0, 30.0, 60.0, 120.0]),
    period_intervals=st.integers(min_value=1, max_value=200),
    failing=st.sets(st.integers(min_value=0, max_value=299), max_size=20),
)
def test_every_commune_attempted_within_the_period(
    n: int, interval: float, period_intervals: int, failing: set[int]
) -> None:
    communes = tuple(f"{i:05d}" for i in range(n))
    period = interval * period_intervals
    ledger = Ledger(communes)
    now = 1_750_000_000.0
    for _ in range(period_intervals * 3):
        now += interval
        size = ledger.batch_size(now, period, interval, cap=10_000)
        for c in ledger.next_batch(now, size):
            ledger.record(c, int(c) not in failing, now)
        if now >= 1_750_000_000.0 + period:  # after the first period: nobody is overdue
            oldest = min(ledger.attempted.get(c, 0.0) for c in communes)
            assert now - oldest <= period, "a commune waited longer than the period"


def test_failing_communes_do_not_starve_the_others() -> None:
    ledger = Ledger(COMMUNES)
    now = 0.0
    for _ in range(168):
        now += 1
        for c in ledger.next_batch(now, 1):
            ledger.record(c, c != "00001", now)
    assert set(ledger.attempted) == set(COMMUNES)
    assert ledger.last_success("00001") == 0.0
    assert all(ledger.last_success(c) > 0 for c in COMMUNES[1:])


def test_batch_size_follows_the_scrape_rate() -> None:
    ledger = Ledger(COMMUNES)
    assert ledger.batch_size(100.0, period=3600, interval_hint=60, cap=500) == 3  # 168/60
    ledger.next_batch(100.0, 3)
    assert ledger.batch_size(100.0 + 600, period=3600, interval_hint=60, cap=500) == 28
    assert ledger.batch_size(100.0 + 9999, period=3600, interval_hint=60, cap=500) == 168
    assert ledger.batch_size(100.0 + 9999, period=3600, interval_hint=60, cap=50) == 50


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "hue.json"
    ledger = Ledger.open(COMMUNES, path)
    ledger.record("00007", True, 123.0)
    ledger.record("00008", False, 124.0)
    ledger.save()
    again = Ledger.open((*COMMUNES[1:], "99999"), path)
    assert again.last_success("00007") == 123.0
    assert again.attempted["00008"] == 124.0
    assert again.last_success("99999") == 0.0
    path.write_text("{not json", encoding="utf-8")
    assert Ledger.open(COMMUNES, path).succeeded == {}  # a broken file is a fresh start
