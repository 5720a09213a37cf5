"""Row counts and checksums of every table of the systems' databases, on the primary at a named
restore point and on the restored copy — and their comparison, table by table.

On the primary, one session (in the `postgres` database, through dblink — contrib, shipped
with Debian's postgresql-15; created inside a transaction that is rolled back, so nothing is
left behind) opens one transaction per system database, LOCKs its tables IN SHARE MODE (writers
wait; readers do not), exports that transaction's snapshot, and — every database locked at once
— creates the restore point. A second transaction per database imports the snapshot; the locks
are released (milliseconds after they were taken) and the counting runs on the snapshot, which
is exactly the data at the restore point. The checksum is order-independent:
sum(hashtext(row::text)::bigint) per table (numeric: it cannot overflow).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from govops.errors import GovopsError

LOCK_TIMEOUT = "60s"

# Every permanent table (partitions counted once, as themselves; unlogged tables left out: their
# rows are not in WAL, so a restore brings them back empty by design; foreign tables are not ours).
_TABLES = (
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND c.relpersistence = 'p' "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1"
)

_FUNCTIONS = r"""
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE FUNCTION pg_temp.govops_conn(d text) RETURNS text LANGUAGE sql AS $f$
  SELECT format('dbname=%s port=%s host=%s user=%s', quote_literal(d), current_setting('port'),
                quote_literal(split_part(current_setting('unix_socket_directories'), ',', 1)),
                quote_literal(current_user))
$f$;
CREATE FUNCTION pg_temp.govops_count(c text, d text)
  RETURNS TABLE(db text, tbl text, n bigint, total numeric, lsn text)
LANGUAGE plpgsql AS $f$
DECLARE t text;
BEGIN
  FOR t IN SELECT x FROM dblink(c, @TABLES@) AS r(x text) LOOP
    RETURN QUERY SELECT d, t, r.n, r.total, NULL::text FROM dblink(c,
      format('SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM %s t', t))
      AS r(n bigint, total numeric);
  END LOOP;
END $f$;
"""

_SNAPSHOT = r"""
CREATE FUNCTION pg_temp.govops_drill(dbs text[], point text)
  RETURNS TABLE(db text, tbl text, n bigint, total numeric, lsn text)
LANGUAGE plpgsql AS $f$
DECLARE d text; tables text; snaps text[] := '{}'; found text[] := '{}'; i int := 0; at pg_lsn;
BEGIN
  FOREACH d IN ARRAY dbs LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d);
    found := found || d;
    PERFORM dblink_connect('lock_' || d, pg_temp.govops_conn(d));
    SELECT string_agg(x, ', ') INTO tables FROM dblink('lock_' || d, @TABLES@) AS r(x text);
    PERFORM dblink_exec('lock_' || d, format('SET lock_timeout = %L', @LOCK_TIMEOUT@));
    PERFORM dblink_exec('lock_' || d, 'BEGIN ISOLATION LEVEL REPEATABLE READ');
    IF tables IS NOT NULL THEN
      PERFORM dblink_exec('lock_' || d, 'LOCK TABLE ' || tables || ' IN SHARE MODE');
    END IF;
    snaps := snaps || (SELECT s FROM dblink('lock_' || d, 'SELECT pg_export_snapshot()')
                       AS r(s text));
  END LOOP;
  at := pg_create_restore_point(point);
  FOREACH d IN ARRAY found LOOP
    i := i + 1;
    PERFORM dblink_connect('read_' || d, pg_temp.govops_conn(d));
    PERFORM dblink_exec('read_' || d, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    PERFORM dblink_exec('read_' || d, format('SET TRANSACTION SNAPSHOT %L', snaps[i]));
    PERFORM dblink_exec('lock_' || d, 'COMMIT');
    PERFORM dblink_disconnect('lock_' || d);
  END LOOP;
  RETURN QUERY SELECT ''::text, '@restore_point'::text, 0::bigint, 0::numeric, at::text;
  FOREACH d IN ARRAY found LOOP
    RETURN QUERY SELECT * FROM pg_temp.govops_count('read_' || d, d);
    PERFORM dblink_exec('read_' || d, 'COMMIT');
    PERFORM dblink_disconnect('read_' || d);
  END LOOP;
END $f$;
"""


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _array(items: list[str]) -> str:
    return "ARRAY[" + ", ".join(_sql_literal(i) for i in items) + "]::text[]"


def _fill(template: str) -> str:
    return template.replace("@TABLES@", _sql_literal(_TABLES)).replace(
        "@LOCK_TIMEOUT@", _sql_literal(LOCK_TIMEOUT)
    )


def snapshot_sql(databases: list[str], point: str) -> str:
    """The primary's script: counts at a new restore point named `point`; rolled back (the
    restore point stays: it is WAL, not a transaction's)."""
    return (
        "BEGIN;\n"
        + _fill(_FUNCTIONS)
        + _fill(_SNAPSHOT)
        + f"SELECT * FROM pg_temp.govops_drill({_array(databases)}, {_sql_literal(point)});\n"
        + "ROLLBACK;\n"
    )


def count_sql(databases: list[str]) -> str:
    """The restored copy's script: the same counts, database by database (nothing writes to
    a scratch cluster, so no snapshot is needed). A database missing there is skipped: the
    comparison names its tables as missing."""
    body = "".join(
        f"SELECT * FROM pg_temp.govops_count_db({_sql_literal(d)});\n" for d in databases
    )
    per_db = r"""
CREATE FUNCTION pg_temp.govops_count_db(d text)
  RETURNS TABLE(db text, tbl text, n bigint, total numeric, lsn text)
LANGUAGE plpgsql AS $f$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_database WHERE datname = d) THEN
    PERFORM dblink_connect('read_' || d, pg_temp.govops_conn(d));
    RETURN QUERY SELECT * FROM pg_temp.govops_count('read_' || d, d);
    PERFORM dblink_disconnect('read_' || d);
  END IF;
END $f$;
"""
    return "BEGIN;\n" + _fill(_FUNCTIONS) + per_db + body + "ROLLBACK;\n"


class CountsError(GovopsError):
    """The counts could not be read (unexpected output)."""


@dataclass(frozen=True)
class TableCount:
    database: str
    table: str
    rows: int
    checksum: str  # numeric, kept as text (exact)


@dataclass(frozen=True)
class Counts:
    tables: dict[tuple[str, str], TableCount]
    restore_point_lsn: str = ""


def parse_counts(text: str) -> Counts:
    """psql --csv -t output of either script."""
    tables: dict[tuple[str, str], TableCount] = {}
    lsn = ""
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if len(row) != 5:
            raise CountsError(f"unexpected row from the counts: {row!r}")
        db, table, rows, checksum, point_lsn = row
        if table == "@restore_point":
            lsn = point_lsn
            continue
        try:
            tables[(db, table)] = TableCount(db, table, int(rows), str(checksum))
        except ValueError:
            raise CountsError(f"unexpected row from the counts: {row!r}") from None
    return Counts(tables, lsn)


@dataclass(frozen=True)
class TableVerdict:
    database: str
    table: str
    primary_rows: int | None
    restored_rows: int | None
    checksum_ok: bool

    @property
    def ok(self) -> bool:
        return self.primary_rows == self.restored_rows and self.checksum_ok

    @property
    def problem(self) -> str:
        if self.primary_rows is None:
            return "only in the restored copy"
        if self.restored_rows is None:
            return "missing from the restored copy"
        if self.primary_rows != self.restored_rows:
            return f"rows differ: primary {self.primary_rows}, restored {self.restored_rows}"
        if not self.checksum_ok:
            return "checksum differs (same row count)"
        return ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "table": self.table,
            "primary_rows": self.primary_rows,
            "restored_rows": self.restored_rows,
            "checksum_ok": self.checksum_ok,
            "ok": self.ok,
            "problem": self.problem,
        }


def compare(primary: Counts, restored: Counts) -> list[TableVerdict]:
    """Every table of either side, sorted; a table is ok when rows and checksum agree."""
    verdicts = []
    for key in sorted(set(primary.tables) | set(restored.tables)):
        p, r = primary.tables.get(key), restored.tables.get(key)
        verdicts.append(
            TableVerdict(
                database=key[0],
                table=key[1],
                primary_rows=p.rows if p else None,
                restored_rows=r.rows if r else None,
                checksum_ok=p is not None and r is not None and p.checksum == r.checksum,
            )
        )
    return verdicts
