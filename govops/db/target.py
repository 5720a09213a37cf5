"""Which backup set a point-in-time recovery starts from, and what target it recovers to.

`--to TIMESTAMP`: ISO-8601; one without an offset is Vietnam's time (what an operator in a
provincial data centre reads on the wall), and the resolved time is always printed with its
offset. `--before-run RUN`: the run's start in the runbook state store, minus one second.
The backup is the newest whose stop time is at or before the target: a backup is consistent
only from its stop, and WAL from its archive start replays it forward to the target.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from govops.db.info import Backup, Stanza
from govops.errors import GovopsError, InputError

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
TARGET_HELP = "an ISO-8601 time, e.g. 2025-06-28T09:30:00+07:00 (no offset: Vietnam's time)"
# A run's start minus this: "just before the run started".
BEFORE_RUN = timedelta(seconds=1)


class NoBackup(GovopsError):
    """The repository holds no backup of the stanza: nothing to restore from (exit 1)."""


def parse_target(text: str, option: str = "--to") -> datetime:
    """An aware datetime from `text`; a naive one is taken in Vietnam's time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError("(command line)", option, TARGET_HELP, got=text) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=VIETNAM)
    return moment


def before_run(started_epoch: float) -> datetime:
    """The target for `--before-run`: one second before the run was started."""
    return datetime.fromtimestamp(started_epoch, UTC) - BEFORE_RUN


def choose_backup(stanza: Stanza, target: datetime, now: datetime, option: str = "--to") -> Backup:
    """The newest backup that stopped at or before `target`. A target in the future or older
    than the oldest backup is refused (exit 2), naming what is possible."""
    if not stanza.backups:
        raise NoBackup(
            f"stanza {stanza.name}: the repository holds no backup "
            f"(status: {stanza.status_message or stanza.status_code})"
        )
    oldest, newest = stanza.backups[0], stanza.backups[-1]
    possible = f"between {shown(oldest.stop)} (backup {oldest.label}) and now ({shown(now)})"
    if target > now:
        raise InputError(
            "(command line)", option, f"a time not in the future: {possible}", got=shown(target)
        )
    if target < oldest.stop:
        raise InputError(
            "(command line)",
            option,
            f"a time the repository can reach, {possible}; older backups have expired (retention)",
            got=shown(target),
        )
    chosen = [b for b in stanza.backups if b.stop <= target]
    return chosen[-1] if chosen else newest


def shown(moment: datetime) -> str:
    """`2025-06-28 09:30:00 +07:00`: Vietnam's time with its offset, for people."""
    local = moment.astimezone(VIETNAM)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def pg_time(moment: datetime) -> str:
    """The target as PostgreSQL's recovery_target_time reads it (UTC, explicit offset)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00")
