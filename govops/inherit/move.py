"""Stream a legacy source into the merged province's tables, batch by durable batch.

Each batch is one target transaction: the rows COPY'd in (mapped records into the system's
table, the others into quarantine) and the checkpoint that says they are there commit together,
so a run killed at any moment leaves either the whole batch and its checkpoint, or neither, and
the next run starts after the last committed id. The transform (re-keying, status and time
normalization, the commune remap) runs in the source's SELECT; bytes flow from one COPY to the
other without being parsed here, so memory stays flat whatever the volume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from govops.errors import GovopsError
from govops.inherit.communes import UNKNOWN_WARD, CommuneMap
from govops.inherit.config import Source
from govops.inherit.schema import (
    CANONICAL,
    REKEY_FACTOR,
    REMAPPED,
    Vendor,
    business_hash,
    business_text,
    target_ddl,
    target_table,
)

Conn = psycopg.Connection[tuple[Any, ...]]
BATCH = 50_000


class ForeignRows(GovopsError):
    """The target holds rows govops did not put there (exit 2: the target is not what it says)."""

    exit_code = 2


@dataclass
class Moved:
    moved: int = 0
    quarantined: int = 0


# Serializes the DDL of runs started together (CREATE TABLE IF NOT EXISTS races otherwise).
DDL_LOCK = 0x1A4E_0015


def ensure_tables(tgt: Conn) -> None:
    with tgt.transaction():
        tgt.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
        tgt.execute(target_ddl())


def prepare_target(tgt: Conn, cmap: CommuneMap, sources: list[Source]) -> None:
    """The receiving tables, and the map of each source's old wards (for verify and status)."""
    ensure_tables(tgt)
    with tgt.transaction():
        rows = []
        for src in sources:
            for ward in cmap.wards_of(src.legacy.old_code):
                commune, reason = cmap.resolve(ward.code)
                rows.append((ward.code, commune, reason))
        with tgt.cursor() as cur:
            cur.executemany(
                "INSERT INTO inherit_commune_map VALUES (%s, %s, %s) ON CONFLICT (old_ward) "
                "DO UPDATE SET commune_code = EXCLUDED.commune_code, reason = EXCLUDED.reason",
                rows,
            )


def id_range(source: Source) -> tuple[int, int]:
    base = int(source.legacy.old_code) * REKEY_FACTOR
    return base, base + REKEY_FACTOR - 1


def checkpoint(tgt: Conn, source: Source, kind: str) -> tuple[int, int, int]:
    row = tgt.execute(
        "SELECT last_id, moved, quarantined FROM inherit_checkpoint "
        "WHERE source = %s AND kind = %s",
        (source.codename, kind),
    ).fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def check_foreign(tgt: Conn, source: Source, kind: str) -> None:
    """Rows in the target for this source beyond its checkpoint, or under its id range from
    another source, were not put there by govops: refuse rather than mix or overwrite them."""
    lo, hi = id_range(source)
    # one statement, one snapshot: a concurrent run's batch commits with its checkpoint
    row = tgt.execute(
        sql.SQL(
            "SELECT count(*), min(id) FROM {} WHERE id BETWEEN %s AND %s "
            "AND (source <> %s OR id > %s + coalesce((SELECT last_id FROM inherit_checkpoint "
            "WHERE source = %s AND kind = %s), 0))"
        ).format(sql.Identifier(target_table(kind))),
        (lo, hi, source.codename, lo, source.codename, kind),
    ).fetchone()
    assert row is not None
    if row[0]:
        raise ForeignRows(
            f"target {target_table(kind)} already holds {row[0]} row(s) for old province "
            f"{source.legacy.old_code} ({source.codename}) that no checkpoint covers (first id "
            f"{row[1]}): they were not moved by govops; remove them or restore the checkpoint"
        )


def _map_values(cmap: CommuneMap, old_code: str) -> sql.Composable:
    rows: list[sql.Composable] = []
    for ward in cmap.wards_of(old_code):
        commune, reason = cmap.resolve(ward.code)
        rows.append(
            sql.SQL("({}, {}::int, {})").format(
                sql.Literal(ward.code), sql.Literal(commune), sql.Literal(reason)
            )
        )
    if not rows:
        rows.append(sql.SQL("(NULL::text, NULL::int, NULL::text)"))
    return sql.SQL(", ").join(rows)


def batch_queries(
    vendor: Vendor, kind: str, source: Source, cmap: CommuneMap
) -> list[tuple[sql.Composed, sql.Composed]]:
    """(source COPY TO, target COPY FROM) pairs for one batch; %(lo)s < id <= %(hi)s."""
    base = int(source.legacy.old_code) * REKEY_FACTOR
    table = sql.Identifier(vendor.tables[kind])
    id_col = sql.Identifier(vendor.id_column[kind])
    canon = sql.SQL(
        "SELECT " + vendor.select[kind] + " FROM {} WHERE {} > %(lo)s AND {} <= %(hi)s"
    ).format(table, id_col, id_col)
    cols = [c for c, _ in CANONICAL[kind]]
    col_list = sql.SQL(", ").join(sql.SQL("c.") + sql.Identifier(c) for c in cols)
    target_cols = ["id", "source", "source_id", *cols]
    head = sql.SQL("{}::bigint + c.source_id, {}::text, c.source_id, {}").format(
        sql.Literal(base), sql.Literal(source.codename), col_list
    )
    if kind not in REMAPPED:
        out = sql.SQL("COPY (SELECT {} FROM ({}) c) TO STDOUT (FORMAT binary)").format(head, canon)
        into = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
            sql.Identifier(target_table(kind)),
            sql.SQL(", ").join(map(sql.Identifier, target_cols)),
        )
        return [(out, into)]
    join = sql.SQL(
        "({}) c LEFT JOIN (VALUES {}) m(ward, commune, reason) ON m.ward = c.old_ward"
    ).format(canon, _map_values(cmap, source.legacy.old_code))
    mapped = sql.SQL(
        "COPY (SELECT {}, m.commune FROM {} WHERE m.commune IS NOT NULL ) TO STDOUT (FORMAT binary)"
    ).format(head, join)
    into_mapped = sql.SQL("COPY {} ({}, commune_code) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(target_table(kind)), sql.SQL(", ").join(map(sql.Identifier, target_cols))
    )
    quarantined = sql.SQL(
        "COPY (SELECT {}::text, {}::text, c.source_id, c.old_ward, coalesce(m.reason, {}), {}, {} "
        "FROM {} WHERE m.commune IS NULL) TO STDOUT (FORMAT binary)"
    ).format(
        sql.Literal(kind),
        sql.Literal(source.codename),
        sql.Literal(UNKNOWN_WARD),
        sql.SQL(business_text(kind, "c")),
        sql.SQL(business_hash(kind, "c")),
        join,
    )
    into_q = sql.Composed(
        [
            sql.SQL(
                "COPY inherit_quarantine (kind, source, source_id, old_ward, reason, record, "
                "record_hash) "
                "FROM STDIN (FORMAT binary)"
            )
        ]
    )
    return [(mapped, into_mapped), (quarantined, into_q)]


def move_kind(
    src: Conn,
    tgt: Conn,
    vendor: Vendor,
    source: Source,
    kind: str,
    cmap: CommuneMap,
    *,
    batch: int = BATCH,
    progress: Callable[[int], None] = lambda n: None,
) -> Moved:
    """Move every source row past the checkpoint; returns what this call moved."""
    if not (tgt.autocommit and src.autocommit):
        raise ValueError(
            "move_kind needs autocommit connections: each batch is its own transaction"
        )
    check_foreign(tgt, source, kind)
    queries = batch_queries(vendor, kind, source, cmap)
    table = sql.Identifier(vendor.tables[kind])
    id_col = sql.Identifier(vendor.id_column[kind])
    next_end = sql.SQL(
        "SELECT max(id) FROM (SELECT {} AS id FROM {} WHERE {} > %s ORDER BY {} LIMIT %s) s"
    ).format(id_col, table, id_col, id_col)
    result = Moved()
    while True:
        last, _, _ = checkpoint(tgt, source, kind)
        row = src.execute(next_end, (last, batch)).fetchone()
        end = row[0] if row else None
        if end is None:
            return result
        counts = []
        with tgt.transaction():
            # the checkpoint row locked first: a second run of the same source waits here
            tgt.execute(
                "INSERT INTO inherit_checkpoint (source, kind) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                (source.codename, kind),
            )
            locked = tgt.execute(
                "SELECT last_id FROM inherit_checkpoint WHERE source = %s AND kind = %s FOR UPDATE",
                (source.codename, kind),
            ).fetchone()
            if locked is None or int(locked[0]) != last:
                continue  # another run moved this batch meanwhile: read the checkpoint again
            for out, into in queries:
                with src.cursor() as scur, tgt.cursor() as tcur:
                    bounds = {"lo": last, "hi": end}
                    with scur.copy(out, bounds) as reader, tcur.copy(into) as writer:
                        for data in reader:
                            writer.write(data)
                    counts.append(max(tcur.rowcount, 0))
            moved = counts[0]
            quarantined = counts[1] if len(counts) > 1 else 0
            tgt.execute(
                "UPDATE inherit_checkpoint SET last_id = %s, moved = moved + %s, "
                "quarantined = quarantined + %s, updated_at = now() "
                "WHERE source = %s AND kind = %s",
                (end, moved, quarantined, source.codename, kind),
            )
        result.moved += moved
        result.quarantined += quarantined
        progress(moved + quarantined)


def remaining(src: Conn, vendor: Vendor, kind: str, last_id: int) -> int:
    row = src.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {} > %s").format(
            sql.Identifier(vendor.tables[kind]), sql.Identifier(vendor.id_column[kind])
        ),
        (last_id,),
    ).fetchone()
    return int(row[0]) if row else 0
