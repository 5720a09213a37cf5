"""`govops db`: the province databases' backups, point-in-time recovery and the restore drill.

pgBackRest keeps each province's backups and WAL in its zone's repository (`backup-<zone>`,
stanza = the province's codename; roles/pgbackrest, docs/backups.md). This package reads the
repository's `info`, chooses the backup set for a target time, restores into a scratch cluster
or in place, and runs the drill the cutover is gated on: the newest backup restored to a named
restore point and compared, table by table, with the primary at that point.

Pure modules (info, target, plan, compare) know no host; remote.py is the one way in (SSH as
the runbooks and the lab reach hosts); restore.py and drill.py run the steps over it.
"""
