"""Prove a source landed: counts, an order-independent checksum, a deep sample, named records.

Per old province and kind: the source's canonical records (through the same vendor SELECT the
move used) against what the target holds for that source — the system's table and quarantine
together, since a quarantined record is kept, not lost. The checksum is the sum of a 64-bit hash
of each record's business fields: independent of order, and a changed, missing or doubled record
moves it. When it differs, both sides are summed again per bucket of ids and the differing
buckets compared record by record, so the result names the records. The deep sample re-reads
random records on both sides and checks each field and the commune the map gives.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from psycopg import sql

from govops.inherit.communes import UNKNOWN_WARD
from govops.inherit.config import Source
from govops.inherit.move import Conn, id_range
from govops.inherit.schema import REMAPPED, Vendor, business_hash, business_text, target_table

BUCKET = 10_000
SAMPLE = 200
MAX_NAMED = 20


@dataclass
class Verdict:
    source: str
    kind: str
    source_count: int = 0
    moved: int = 0
    quarantined: int = 0
    source_sum: int = 0
    target_sum: int = 0
    problems: list[str] = field(default_factory=list)
    mismatches: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class Resolver(Protocol):
    def resolve(self, ward_code: str) -> tuple[int | None, str | None]: ...


class StoredMap:
    """The ward map as the run stored it in the target (`inherit_commune_map`): what verify
    checks communes against, without rebuilding the published map."""

    def __init__(self, tgt: Conn) -> None:
        rows = tgt.execute("SELECT old_ward, commune_code, reason FROM inherit_commune_map")
        self.rows: dict[str, tuple[int | None, str | None]] = {str(w): (c, r) for w, c, r in rows}

    def resolve(self, ward_code: str) -> tuple[int | None, str | None]:
        return self.rows.get(ward_code, (None, UNKNOWN_WARD))


def source_records(vendor: Vendor, kind: str) -> sql.Composed:
    """(source_id, hash) of every canonical record: the source side of every comparison."""
    return sql.SQL("SELECT c.source_id AS sid, {} AS h FROM (SELECT {} FROM {}) c").format(
        sql.SQL(business_hash(kind, "c")),
        sql.SQL(vendor.select[kind]),
        sql.Identifier(vendor.tables[kind]),
    )


def target_records(source: Source, kind: str) -> sql.Composed:
    lo, hi = id_range(source)
    return sql.SQL(
        "SELECT t.source_id AS sid, {} AS h, 'moved' AS side FROM {} t "
        "WHERE t.id BETWEEN {} AND {} "
        "UNION ALL SELECT q.source_id, {}, 'quarantined' FROM inherit_quarantine q "
        "WHERE q.kind = {} AND q.source = {}"
    ).format(
        sql.SQL(business_hash(kind, "t")),
        sql.Identifier(target_table(kind)),
        sql.Literal(lo),
        sql.Literal(hi),
        sql.SQL("q.record_hash"),
        sql.Literal(kind),
        sql.Literal(source.codename),
    )


def _totals(conn: Conn, records: sql.Composed, with_side: bool) -> tuple[int, int, int, int]:
    side = "count(*) FILTER (WHERE side = 'moved'), count(*) FILTER (WHERE side <> 'moved')"
    query = sql.SQL("SELECT count(*), coalesce(sum(h), 0), {} FROM ({}) r").format(
        sql.SQL(side if with_side else "0, 0"), records
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def _buckets(conn: Conn, records: sql.Composed) -> dict[int, tuple[int, int]]:
    query = sql.SQL("SELECT sid / {b}, count(*), sum(h) FROM ({}) r GROUP BY 1").format(
        records, b=sql.Literal(BUCKET)
    )
    return {int(r[0]): (int(r[1]), int(r[2])) for r in conn.execute(query)}


def _rows(conn: Conn, records: sql.Composed, bucket: int) -> dict[int, list[int]]:
    query = sql.SQL("SELECT sid, h FROM ({}) r WHERE sid / {b} = {k}").format(
        records, b=sql.Literal(BUCKET), k=sql.Literal(bucket)
    )
    result: dict[int, list[int]] = {}
    for sid, h in conn.execute(query):
        result.setdefault(int(sid), []).append(int(h))
    return result


def _name_records(
    src: Conn, tgt: Conn, verdict: Verdict, src_q: sql.Composed, tgt_q: sql.Composed
) -> None:
    with ThreadPoolExecutor(2) as pool:
        fs, ft = pool.submit(_buckets, src, src_q), pool.submit(_buckets, tgt, tgt_q)
        sb, tb = fs.result(), ft.result()
    named = 0
    for bucket in sorted(set(sb) | set(tb)):
        if sb.get(bucket) == tb.get(bucket):
            continue
        srows, trows = _rows(src, src_q, bucket), _rows(tgt, tgt_q, bucket)
        for sid in sorted(set(srows) | set(trows)):
            s, t = srows.get(sid, []), trows.get(sid, [])
            if s == t:
                continue
            verdict.mismatches += 1
            if named >= MAX_NAMED:
                continue
            named += 1
            if not t:
                what = "missing from the target"
            elif not s:
                what = "in the target but not in the source"
            elif len(t) > 1:
                what = f"in the target {len(t)} times"
            else:
                what = "changed since it was copied (business fields differ)"
            verdict.problems.append(f"{verdict.source} {verdict.kind} {sid}: {what}")
    if verdict.mismatches > named:
        verdict.problems.append(f"... and {verdict.mismatches - named} more record(s)")


def _deep_sample(
    src: Conn,
    tgt: Conn,
    vendor: Vendor,
    source: Source,
    kind: str,
    cmap: Resolver,
    verdict: Verdict,
    rng: random.Random,
) -> None:
    row = src.execute(
        sql.SQL("SELECT max({}) FROM {}").format(
            sql.Identifier(vendor.id_column[kind]), sql.Identifier(vendor.tables[kind])
        )
    ).fetchone()
    top = int(row[0] or 0) if row else 0
    if not top:
        return
    ids = sorted(rng.sample(range(1, top + 1), min(SAMPLE, top)))
    fields = business_text(kind, "c")
    ward = "c.old_ward" if kind in REMAPPED else "NULL"
    query = sql.SQL(
        "SELECT c.source_id, {}, {} FROM (SELECT {} FROM {} WHERE {} = ANY(%s)) c"
    ).format(
        sql.SQL(fields),
        sql.SQL(ward),
        sql.SQL(vendor.select[kind]),
        sql.Identifier(vendor.tables[kind]),
        sql.Identifier(vendor.id_column[kind]),
    )
    expected = {int(r[0]): (str(r[1]), r[2]) for r in src.execute(query, (ids,))}
    lo, _ = id_range(source)
    commune = "t.commune_code" if kind in REMAPPED else "NULL::int"
    moved = {
        int(r[0]): (str(r[1]), r[2])
        for r in tgt.execute(
            sql.SQL("SELECT t.source_id, {}, {} FROM {} t WHERE t.id = ANY(%s)").format(
                sql.SQL(business_text(kind, "t")),
                sql.SQL(commune),
                sql.Identifier(target_table(kind)),
            ),
            ([lo + i for i in expected],),
        )
    }
    held = {
        int(r[0]): (str(r[1]), str(r[2]))
        for r in tgt.execute(
            "SELECT source_id, record, reason FROM inherit_quarantine "
            "WHERE kind = %s AND source = %s "
            "AND source_id = ANY(%s)",
            (kind, source.codename, list(expected)),
        )
    }
    for sid, (text, old_ward) in expected.items():
        if sid in moved:
            got, code = moved[sid]
            want = cmap.resolve(old_ward)[0] if kind in REMAPPED else None
            if got != text:
                verdict.problems.append(
                    f"{source.codename} {kind} {sid}: sample differs: {got!r} != {text!r}"
                )
            elif code != want:
                verdict.problems.append(
                    f"{source.codename} {kind} {sid}: commune {code} but the map gives {want}"
                )
        elif sid in held:
            got, reason = held[sid]
            want_reason = cmap.resolve(old_ward)[1] if kind in REMAPPED else None
            if got != text or reason != want_reason:
                verdict.problems.append(
                    f"{source.codename} {kind} {sid}: quarantined record differs"
                )
        # absent from both: the count and checksum comparison has named it already


def verify_kind(
    src: Conn,
    tgt: Conn,
    vendor: Vendor,
    source: Source,
    kind: str,
    cmap: Resolver,
    *,
    seed: int | None = None,
) -> Verdict:
    src_q, tgt_q = source_records(vendor, kind), target_records(source, kind)
    verdict = Verdict(source.codename, kind)
    # the two databases sum at the same time (each scan runs on its own server)
    with ThreadPoolExecutor(2) as pool:
        fs = pool.submit(_totals, src, src_q, False)
        ft = pool.submit(_totals, tgt, tgt_q, True)
        (verdict.source_count, verdict.source_sum, _, _) = fs.result()
        (total, verdict.target_sum, verdict.moved, verdict.quarantined) = ft.result()
    if total != verdict.source_count or verdict.target_sum != verdict.source_sum:
        verdict.problems.append(
            f"{source.codename} {kind}: source {verdict.source_count} records, target {total} "
            f"({verdict.moved} moved, {verdict.quarantined} quarantined), checksums "
            f"{'equal' if verdict.target_sum == verdict.source_sum else 'differ'}"
        )
        _name_records(src, tgt, verdict, src_q, tgt_q)
    _deep_sample(src, tgt, vendor, source, kind, cmap, verdict, random.Random(seed))
    record(tgt, verdict)
    return verdict


def record(tgt: Conn, verdict: Verdict) -> None:
    """The verdict in the target, where status, report and the exporter read it."""
    with tgt.transaction():
        tgt.execute(
            "INSERT INTO inherit_verification (source, kind, verified_at, ok, source_count, moved, "
            "quarantined, mismatches, detail) VALUES (%s, %s, now(), %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (source, kind) DO UPDATE SET verified_at = now(), ok = EXCLUDED.ok, "
            "source_count = EXCLUDED.source_count, moved = EXCLUDED.moved, "
            "quarantined = EXCLUDED.quarantined, mismatches = EXCLUDED.mismatches, "
            "detail = EXCLUDED.detail",
            (
                verdict.source,
                verdict.kind,
                verdict.ok,
                verdict.source_count,
                verdict.moved,
                verdict.quarantined,
                verdict.mismatches,
                "\n".join(verdict.problems)[:4000],
            ),
        )


def summary(tgt: Conn) -> list[dict[str, Any]]:
    cols = (
        "source",
        "kind",
        "verified_at",
        "ok",
        "source_count",
        "moved",
        "quarantined",
        "mismatches",
        "detail",
    )
    rows = tgt.execute(
        f"SELECT {', '.join(cols)} FROM inherit_verification ORDER BY 1, 2"
    ).fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]
