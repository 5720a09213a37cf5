"""One inheritance job: the sources of a province, each kind, planned, moved or verified.

What the CLI, the runbooks and the benchmark call; it reports through callbacks and returns
figures, printing nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from govops.errors import InputError
from govops.inherit.communes import CommuneMap, commune_map
from govops.inherit.config import Source, connect
from govops.inherit.move import (
    BATCH,
    Conn,
    Moved,
    checkpoint,
    ensure_tables,
    move_kind,
    prepare_target,
    remaining,
)
from govops.inherit.schema import KIND_SYSTEM, Vendor, detect_vendor
from govops.inherit.verify import StoredMap, Verdict, verify_kind

T = TypeVar("T")
# two COPY streams at once: what two cores feed (a source backend, a target backend each)
JOBS = 2

# (source, kind, total) when a piece starts; (source, kind, rows) as it advances
Start = Callable[[str, str, int], None]
Advance = Callable[[str, str, int], None]


def kinds_for(systems: tuple[str, ...]) -> list[str]:
    known = sorted(set(KIND_SYSTEM.values()))
    for system in systems:
        if system not in known:
            raise InputError(
                "--system", "system", f"a system holding legacy records: {', '.join(known)}", system
            )
    return [k for k, s in KIND_SYSTEM.items() if not systems or s in systems]


@dataclass
class PlanRow:
    source: str
    old_code: str
    vendor: str
    kind: str
    system: str
    total: int
    done: int
    to_move: int
    wards: dict[str, int]


@contextmanager
def _connections(
    target: str, sources: list[Source]
) -> Iterator[tuple[Conn, dict[str, tuple[Conn, Vendor]]]]:
    tgt = connect(target, "target", autocommit=True)
    opened: dict[str, tuple[Conn, Vendor]] = {}
    try:
        for s in sources:
            src = connect(s.dsn, f"source {s.codename}", autocommit=True)
            opened[s.codename] = (src, detect_vendor(src, f"source {s.codename}"))
        yield tgt, opened
    finally:
        for src, _ in opened.values():
            src.close()
        tgt.close()


def _ward_counts(cmap: CommuneMap, old_code: str) -> dict[str, int]:
    counts = {"mapped": 0, "ambiguous": 0, "unjoined": 0}
    for ward in cmap.wards_of(old_code):
        commune, reason = cmap.resolve(ward.code)
        counts[
            "mapped" if commune else "ambiguous" if "several" in (reason or "") else "unjoined"
        ] += 1
    return counts


def plan(target: str, sources: list[Source], kinds: list[str]) -> list[PlanRow]:
    cmap = commune_map()
    rows = []
    with _connections(target, sources) as (tgt, opened):
        prepare_target(tgt, cmap, sources)
        for s in sources:
            src, vendor = opened[s.codename]
            for kind in kinds:
                last, moved, quarantined = checkpoint(tgt, s, kind)
                todo = remaining(src, vendor, kind, last)
                rows.append(
                    PlanRow(
                        s.codename,
                        s.legacy.old_code,
                        vendor.name,
                        kind,
                        KIND_SYSTEM[kind],
                        moved + quarantined + todo,
                        moved + quarantined,
                        todo,
                        _ward_counts(cmap, s.legacy.old_code),
                    )
                )
    return rows


def _pieces(sources: list[Source], kinds: list[str]) -> list[tuple[Source, str]]:
    # the largest first (dossiers), so parallel workers finish together
    return [(s, k) for k in kinds for s in sources]


def _in_parallel(
    jobs: int, pieces: list[tuple[Source, str]], work: Callable[[Source, str], T]
) -> list[T]:
    """Each piece on its own connections; at most `jobs` at once (each a COPY stream)."""
    if jobs <= 1 or len(pieces) <= 1:
        return [work(s, k) for s, k in pieces]
    with ThreadPoolExecutor(min(jobs, len(pieces))) as pool:
        return list(pool.map(lambda p: work(*p), pieces))


def run(
    target: str,
    sources: list[Source],
    kinds: list[str],
    *,
    batch: int = BATCH,
    jobs: int = JOBS,
    start: Start = lambda s, k, n: None,
    advance: Advance = lambda s, k, n: None,
) -> dict[tuple[str, str], Moved]:
    cmap = commune_map()
    with _connections(target, sources) as (tgt, opened):
        prepare_target(tgt, cmap, sources)
        vendors = {name: vendor for name, (_, vendor) in opened.items()}

    def work(s: Source, kind: str) -> Moved:
        with (
            connect(target, "target", autocommit=True) as tgt,
            connect(s.dsn, f"source {s.codename}", autocommit=True) as src,
        ):
            vendor = vendors[s.codename]
            last, _, _ = checkpoint(tgt, s, kind)
            start(s.codename, kind, remaining(src, vendor, kind, last))
            return move_kind(
                src,
                tgt,
                vendor,
                s,
                kind,
                cmap,
                batch=batch,
                progress=lambda n: advance(s.codename, kind, n),
            )

    pieces = _pieces(sources, kinds)
    moved = _in_parallel(jobs, pieces, work)
    return {(s.codename, k): m for (s, k), m in zip(pieces, moved, strict=True)}


def verify(
    target: str,
    sources: list[Source],
    kinds: list[str],
    *,
    jobs: int = JOBS,
    start: Start = lambda s, k, n: None,
    advance: Advance = lambda s, k, n: None,
) -> list[Verdict]:
    with _connections(target, sources) as (tgt, opened):
        ensure_tables(tgt)  # a target never run into verifies as empty, not as an error
        cmap = StoredMap(tgt)
        vendors = {name: vendor for name, (_, vendor) in opened.items()}

    def work(s: Source, kind: str) -> Verdict:
        with (
            connect(target, "target", autocommit=True) as tgt,
            connect(s.dsn, f"source {s.codename}", autocommit=True) as src,
        ):
            start(s.codename, kind, 1)
            verdict = verify_kind(src, tgt, vendors[s.codename], s, kind, cmap)
            advance(s.codename, kind, 1)
            return verdict

    return _in_parallel(jobs, _pieces(sources, kinds), work)


def status(target: str, limit: int) -> dict[str, Any]:
    """What the target holds: checkpoints, verdicts, quarantine by reason and its records."""
    with connect(target, "target", autocommit=True) as tgt:
        exists = tgt.execute("SELECT to_regclass('inherit_checkpoint') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return {"checkpoints": [], "verification": [], "quarantine": [], "quarantined": []}
        checkpoints = [
            dict(
                zip(
                    ("source", "kind", "last_id", "moved", "quarantined", "updated_at"),
                    r,
                    strict=True,
                )
            )
            for r in tgt.execute(
                "SELECT source, kind, last_id, moved, quarantined, updated_at "
                "FROM inherit_checkpoint "
                "ORDER BY 1, 2"
            )
        ]
        verification = [
            dict(
                zip(("source", "kind", "ok", "verified_at", "mismatches", "detail"), r, strict=True)
            )
            for r in tgt.execute(
                "SELECT source, kind, ok, verified_at, mismatches, detail "
                "FROM inherit_verification "
                "ORDER BY 1, 2"
            )
        ]
        quarantine = [
            dict(zip(("source", "kind", "reason", "records"), r, strict=True))
            for r in tgt.execute(
                "SELECT source, kind, reason, count(*) FROM inherit_quarantine GROUP BY 1, 2, 3 "
                "ORDER BY 1, 2, 3"
            )
        ]
        records = [
            dict(zip(("source", "kind", "source_id", "old_ward", "reason"), r, strict=True))
            for r in tgt.execute(
                "SELECT source, kind, source_id, old_ward, reason FROM inherit_quarantine "
                "ORDER BY source, kind, source_id LIMIT %s",
                (limit,),
            )
        ]
    return {
        "checkpoints": checkpoints,
        "verification": verification,
        "quarantine": quarantine,
        "quarantined": records,
    }
