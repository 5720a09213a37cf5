"""Durations (`30s`, `5m`, `1h30m`, `2d`) and deadlines (absolute ISO time or `T0+6h`).

Runbooks are rehearsed again and again, so a deadline can be relative to the run's T0; the
national cutover's dates do not move, so it can also be an absolute time with its UTC offset.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_DURATION = re.compile(
    r"^\s*(?:(?P<d>\d+)d)?\s*(?:(?P<h>\d+)h)?\s*(?:(?P<m>\d+)m(?!s))?\s*"
    r"(?:(?P<s>\d+(?:\.\d+)?)s)?\s*(?:(?P<ms>\d+)ms)?\s*$"
)
_RELATIVE = re.compile(r"^\s*T0\s*(?:(?P<sign>[+-])\s*(?P<duration>\S.*))?$")
# Bounds that keep every sum of a time and a duration a valid datetime (no OverflowError):
# a duration is at most ten years; a time lies between these two years.
MAX_DURATION = 10 * 366 * 86400.0
FIRST_YEAR, LAST_YEAR = 1970, 2999
DURATION_HELP = "a duration like 30s, 5m, 1h30m or 2d (or a number of seconds)"
DEADLINE_HELP = "an ISO time with its UTC offset (2025-06-27T17:00:00+07:00) or T0±duration (T0+6h)"


def parse_duration(value: object) -> float:
    """Seconds from `30s`, `5m`, `1h30m`, `2d`, `250ms` or a plain number (finite, at most
    ten years)."""
    if isinstance(value, bool):
        raise ValueError(DURATION_HELP)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(DURATION_HELP)
        seconds = float(value) if value <= MAX_DURATION else math.inf
    elif isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(DURATION_HELP)
        seconds = value
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None or not any(match.groupdict().values()):
            raise ValueError(DURATION_HELP)
        parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
        seconds = (
            parts["d"] * 86400
            + parts["h"] * 3600
            + parts["m"] * 60
            + parts["s"]
            + parts["ms"] / 1000
        )
    else:
        raise ValueError(DURATION_HELP)
    if not seconds <= MAX_DURATION:  # also catches an infinite sum of huge parts
        raise ValueError(f"{DURATION_HELP}, at most ten years")
    return seconds


def format_duration(seconds: float) -> str:
    """The inverse for display: 5400 → 1h30m, 2.5 → 2.5s."""
    if seconds < 60:
        return f"{round(seconds, 2):g}s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s"))
    return "".join(f"{n}{u}" for n, u in units if n)


def parse_time(value: object) -> datetime:
    """An absolute, offset-aware time; a naive one is refused (whose 17:00 would it be?)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        raise ValueError(DEADLINE_HELP)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(DEADLINE_HELP) from None
    else:
        raise ValueError(DEADLINE_HELP)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(DEADLINE_HELP + " (this one has no UTC offset)")
    try:
        year = moment.astimezone(UTC).year
    except (OverflowError, ValueError):
        year = moment.year
    if not FIRST_YEAR <= year <= LAST_YEAR or not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"{DEADLINE_HELP}, between {FIRST_YEAR} and {LAST_YEAR}")
    return moment


@dataclass(frozen=True)
class Deadline:
    """Either `at` (absolute) or `offset` seconds after T0; `text` as written."""

    text: str
    at: datetime | None = None
    offset: float | None = None

    @classmethod
    def parse(cls, value: object) -> Deadline:
        if isinstance(value, Deadline):
            return value
        if isinstance(value, str) and (match := _RELATIVE.match(value)):
            if match["sign"] is None:
                return cls(text=value.strip(), offset=0.0)
            seconds = parse_duration(match["duration"])
            return cls(text=value.strip(), offset=seconds if match["sign"] == "+" else -seconds)
        moment = parse_time(value)
        text = value.strip() if isinstance(value, str) else moment.isoformat()
        return cls(text=text, at=moment)

    @property
    def relative(self) -> bool:
        return self.offset is not None

    def resolve(self, t0: datetime) -> datetime:
        if self.at is not None:
            return self.at
        return t0 + timedelta(seconds=self.offset or 0.0)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""


# Every time a person reads is shown in Vietnam's time (the cutover's dates are Vietnamese);
# machine formats (JSON, metrics) keep ISO with its offset, in UTC.
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


def shown(moment: datetime | None) -> str:
    """A time for a person: `2025-06-28 13:00:00 +07:00` (Vietnam's time)."""
    if moment is None:
        return ""
    local = moment.astimezone(VIETNAM)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def shown_epoch(seconds: float | None) -> str:
    return shown(from_epoch(seconds))


def clock(moment: datetime | None = None) -> str:
    """The time of day for a log line: `13:00:05` in Vietnam's time."""
    return (moment or utcnow()).astimezone(VIETNAM).strftime("%H:%M:%S")


def from_epoch(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None
