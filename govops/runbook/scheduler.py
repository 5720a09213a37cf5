"""Waves and rate control: which provinces run when, how many at once, when to stop.

A pilot wave first, then batches in official code order. The run goes phase by phase: every
wave does a phase before any province starts the next one — the national sequence has one
date per phase (adjustment by 27 June, trial 28–29 June, official operation 30 June), and the
pilot proves each phase before the batches repeat it.

Within a wave at most `max_concurrency` provinces run at once. Like AWS SSM Automation's
MaxErrors: once more than `max_errors` provinces of a wave have failed, no new province is
started (in this wave or later ones); those in flight finish, failed ones roll back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from govops.runbook.model import Phase, Waves, allowed_errors


@dataclass(frozen=True)
class Wave:
    index: int
    provinces: tuple[str, ...]
    max_concurrency: int
    max_errors: int  # failed provinces tolerated; one more stops new starts
    pilot: bool = False

    @property
    def label(self) -> str:
        return "pilot" if self.pilot else f"wave {self.index}"


@dataclass(frozen=True)
class Halt:
    wave: Wave
    phase: str
    errors: int

    def __str__(self) -> str:
        return (
            f"{self.wave.label} failed {self.errors} provinces in phase {self.phase}, more than "
            f"the {self.wave.max_errors} allowed: no new province is started"
        )


def plan_waves(spec: Waves, selected: Sequence[str]) -> list[list[str]]:
    """The provinces of each wave: the pilots present in the selection, then batches."""
    pilot = [p for p in spec.pilot if p in selected]
    rest = [p for p in selected if p not in pilot]
    waves = [pilot] if pilot else []
    waves += [rest[i : i + spec.batch_size] for i in range(0, len(rest), spec.batch_size)]
    return waves


def waves_of(spec: Waves, planned: Sequence[Sequence[str]]) -> list[Wave]:
    """The stored plan with the runbook's limits (a pilot wave is the one listing pilots)."""
    result = []
    for index, provinces in enumerate(planned):
        pilot = index == 0 and bool(spec.pilot) and set(provinces) <= set(spec.pilot)
        budget = spec.pilot_max_errors if pilot else spec.max_errors
        result.append(
            Wave(
                index=index,
                provinces=tuple(provinces),
                max_concurrency=spec.max_concurrency,
                max_errors=allowed_errors(budget, len(provinces)),
                pilot=pilot,
            )
        )
    return result


Work = Callable[[str, Phase, Wave], str]  # province, phase, wave → done/failed/waiting/aborted


def run_waves(
    waves: Sequence[Wave],
    phases: Sequence[Phase],
    work: Work,
    *,
    eligible: Callable[[str], bool],
    failed_in: Callable[[Wave, Phase], int],
    stop: Callable[[], bool],
    on_wave: Callable[[Wave, Phase], None] = lambda wave, phase: None,
) -> Halt | None:
    """Run every phase over every wave; return why the run halted, or None."""
    for phase in phases:
        for wave in waves:
            errors = failed_in(wave, phase)  # failures already recorded (a resumed run)
            if errors > wave.max_errors:
                return Halt(wave, phase.id, errors)
            todo = [p for p in wave.provinces if eligible(p)]
            if not todo or stop():
                continue
            on_wave(wave, phase)
            errors = _run_wave(wave, phase, todo, work, errors, stop)
            if errors > wave.max_errors:
                return Halt(wave, phase.id, errors)
        if stop():
            return None
    return None


def _run_wave(
    wave: Wave, phase: Phase, todo: list[str], work: Work, errors: int, stop: Callable[[], bool]
) -> int:
    pending = list(todo)
    in_flight: set[Future[str]] = set()
    with ThreadPoolExecutor(
        max_workers=min(wave.max_concurrency, len(todo)), thread_name_prefix=f"wave{wave.index}"
    ) as pool:
        while pending or in_flight:
            while (
                pending
                and len(in_flight) < wave.max_concurrency
                and errors <= wave.max_errors
                and not stop()
            ):
                in_flight.add(pool.submit(work, pending.pop(0), phase, wave))
            if not in_flight:
                break  # nothing running and nothing may start: threshold reached or stopping
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            errors += sum(1 for f in finished if f.result() == "failed")
    return errors
