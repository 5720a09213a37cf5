"""govops db: pgBackRest's info read into backups, the PITR target and backup set chosen, and
the dry run's text — pure, no host."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from govops.db.info import InfoError, parse_info
from govops.db.plan import Hosts, time_plan
from govops.db.target import NoBackup, before_run, choose_backup, parse_target, pg_time
from govops.errors import InputError

# `pgbackrest --stanza=hue info --output=json` of pgBackRest 2.45 (Debian 12), captured from a
# real stanza with a full, a diff and an incr backup (encrypted repository).
INFO = r"""
[{"archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1",
   "max": "000000010000000000000006", "min": "000000010000000000000001"}],
  "backup": [
   {"archive": {"start": "000000010000000000000002", "stop": "000000010000000000000002"},
    "backrest": {"format": 5, "version": "2.45"}, "database": {"id": 1, "repo-key": 1},
    "error": false,
    "info": {"delta": 38189775, "repository": {"delta": 5128944, "size": 5128944},
             "size": 38189775},
    "label": "20261203-135916F", "lsn": {"start": "0/2000028", "stop": "0/2000100"},
    "prior": null, "reference": null,
    "timestamp": {"start": 1796306356, "stop": 1796306360}, "type": "full"},
   {"archive": {"start": "000000010000000000000004", "stop": "000000010000000000000004"},
    "backrest": {"format": 5, "version": "2.45"}, "database": {"id": 1, "repo-key": 1},
    "error": false,
    "info": {"delta": 139529, "repository": {"delta": 15920, "size": 5130208},
             "size": 38189774},
    "label": "20261203-135916F_20261203-135921D",
    "lsn": {"start": "0/4000028", "stop": "0/4000100"},
    "prior": "20261203-135916F", "reference": ["20261203-135916F"],
    "timestamp": {"start": 1796306361, "stop": 1796306362}, "type": "diff"},
   {"archive": {"start": "000000010000000000000006", "stop": "000000010000000000000006"},
    "backrest": {"format": 5, "version": "2.45"}, "database": {"id": 1, "repo-key": 1},
    "error": false,
    "info": {"delta": 172298, "repository": {"delta": 17408, "size": 5131552},
             "size": 38197967},
    "label": "20261203-135916F_20261203-135923I",
    "lsn": {"start": "0/6000028", "stop": "0/6000100"},
    "prior": "20261203-135916F_20261203-135921D",
    "reference": ["20261203-135916F", "20261203-135916F_20261203-135921D"],
    "timestamp": {"start": 1796306363, "stop": 1796306365}, "type": "incr"}],
  "cipher": "aes-256-cbc",
  "db": [{"id": 1, "repo-key": 1, "system-id": 7715077045992722353, "version": "15"}],
  "name": "hue",
  "repo": [{"cipher": "aes-256-cbc", "key": 1, "status": {"code": 0, "message": "ok"}}],
  "status": {"code": 0, "lock": {"backup": {"held": false}, "restore": {"held": false}},
             "message": "ok"}}]
"""
FULL_STOP = datetime.fromtimestamp(1796306360, UTC)
INCR_STOP = datetime.fromtimestamp(1796306365, UTC)
HOSTS = Hosts("hue", "hue", "hue-db", "hue-db-standby", "backup-lab")


def test_info_is_read_into_typed_backups_oldest_first() -> None:
    stanza = parse_info(INFO, "hue")
    assert stanza.ok and stanza.cipher == "aes-256-cbc"
    assert [b.type for b in stanza.backups] == ["full", "diff", "incr"]
    full, _, incr = stanza.backups
    assert full.label == "20261203-135916F" and full.stop == FULL_STOP
    assert (full.lsn_start, full.lsn_stop) == ("0/2000028", "0/2000100")
    assert full.wal_start == "000000010000000000000002"
    assert (full.size, full.repo_size, full.delta) == (38189775, 5128944, 38189775)
    assert incr.prior == "20261203-135916F_20261203-135921D" and incr.stop == INCR_STOP
    assert (stanza.wal_min, stanza.wal_max) == (
        "000000010000000000000001",
        "000000010000000000000006",
    )
    assert stanza.newest_of("diff") is stanza.backups[1]


def test_a_stanza_not_in_the_repository_is_named_with_those_that_are() -> None:
    with pytest.raises(InfoError, match=r"backup-lab: .*no stanza 'ha_noi'.*stanzas: hue"):
        parse_info(INFO, "ha_noi", "backup-lab: pgbackrest info")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[0]["backup"][0].pop("timestamp"), r"backup\[0\]: timestamp: expected dict"),
        (lambda d: d[0]["backup"][1].update(type="snap"), r"backup\[1\]: type: expected one of"),
        (lambda d: d[0]["backup"][2]["info"].update(size="big"), r"info: size: expected int"),
    ],
)
def test_a_broken_info_names_the_key(mutate: object, message: str) -> None:
    data = json.loads(INFO)
    mutate(data)  # type: ignore[operator]
    with pytest.raises(InfoError, match=message):
        parse_info(json.dumps(data), "hue")


def test_not_json_is_an_error_naming_the_source() -> None:
    with pytest.raises(InfoError, match="backup-lab: pgbackrest info: not JSON"):
        parse_info("ERROR: [055]: unable to load info file", "hue", "backup-lab: pgbackrest info")


def test_a_naive_target_is_vietnam_time_and_an_offset_is_kept() -> None:
    naive = parse_target("2025-06-28T09:30:00")
    assert naive.utcoffset() == timedelta(hours=7)
    assert pg_time(naive) == "2025-06-28 02:30:00+00"
    assert parse_target("2025-06-28T02:30:00+00:00") == naive
    with pytest.raises(InputError, match="--to: expected an ISO-8601 time"):
        parse_target("yesterday")


def test_the_newest_backup_stopped_at_or_before_the_target_is_chosen() -> None:
    stanza = parse_info(INFO, "hue")
    now = INCR_STOP + timedelta(hours=1)
    assert choose_backup(stanza, FULL_STOP, now).label == "20261203-135916F"
    between = FULL_STOP + timedelta(seconds=3)  # the diff stopped at +2 s, the incr at +5 s
    assert choose_backup(stanza, between, now).type == "diff"
    assert choose_backup(stanza, INCR_STOP + timedelta(minutes=30), now).type == "incr"


def test_a_target_older_than_the_oldest_backup_or_in_the_future_is_refused() -> None:
    stanza = parse_info(INFO, "hue")
    now = INCR_STOP + timedelta(hours=1)
    with pytest.raises(InputError, match=r"--to: expected a time the repository can reach") as e:
        choose_backup(stanza, FULL_STOP - timedelta(seconds=1), now)
    assert e.value.exit_code == 2 and "20261203-135916F" in str(e.value)
    with pytest.raises(InputError, match="not in the future"):
        choose_backup(stanza, now + timedelta(minutes=1), now)


def test_no_backup_at_all_is_not_bad_input() -> None:
    data = json.loads(INFO)
    data[0]["backup"] = []
    data[0]["status"] = {"code": 2, "message": "no valid backups"}
    with pytest.raises(NoBackup, match="no valid backups") as e:
        choose_backup(parse_info(json.dumps(data), "hue"), FULL_STOP, INCR_STOP)
    assert e.value.exit_code == 1


def test_before_run_is_one_second_before_the_run_started() -> None:
    assert before_run(1796306400.0) == datetime.fromtimestamp(1796306399, UTC)


def test_the_dry_run_says_which_backup_which_wal_where_and_what_it_stops() -> None:
    stanza = parse_info(INFO, "hue")
    target = parse_target("2026-12-03T21:30:00+07:00")
    backup = choose_backup(stanza, target, target + timedelta(hours=1))
    scratch = "\n".join(time_plan(HOSTS, backup, target, "scratch", stanza.wal_max).lines())
    assert "backup set: 20261203-135916F_20261203-135923I (incr" in scratch
    assert (
        "WAL needed: 000000010000000000000006 → the segment holding 2026-12-03 21:30:00" in scratch
    )
    assert "(archived up to 000000010000000000000006)" in scratch
    assert "restores on: backup-lab into /var/lib/govops-scratch/hue" in scratch
    assert "stops: nothing" in scratch and "archive_mode off" in scratch
    assert "sudo -n -u pgbackrest pgbackrest --reset-pg1-host" in scratch
    assert "'--target=2026-12-03 14:30:00+00' --target-action=promote restore" in scratch
    in_place = time_plan(HOSTS, backup, target, "in-place", stanza.wal_max)
    text = "\n".join(in_place.lines())
    assert "restores on: hue-db into /var/lib/postgresql/15/main" in text
    assert "PostgreSQL on hue-db (postgresql@15-main)" in text
    assert "the standby hue-db-standby stops following" in text
    assert "sudo -n -u postgres pgbackrest --stanza=hue" in text and "--delta restore" in text
    assert "rebuild the standby" in text and "-e postgresql_standby_rebuild=true" in text
    data = in_place.as_dict()
    assert data["backup"]["label"] == backup.label and data["host"] == "hue-db"
    assert data["target"] == {
        "type": "time",
        "value": "2026-12-03 14:30:00+00",
        "time": "2026-12-03T21:30:00+07:00",
    }
    json.dumps(data)  # serialisable as it is
