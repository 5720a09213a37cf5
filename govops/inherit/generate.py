"""Deterministic synthetic legacy records: a seed and a volume give the same rows every time.

Rows are made inside PostgreSQL (generate_series and a seeded hash per row), so ten million
dossiers cost the server's time, not a Python loop's. Wards are the old province's real wards
from the published map; one dossier in 2,000 carries a ward code the map does not know (a
clerk's typo, as old systems hold), so quarantine has something real to catch.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from govops.inherit.communes import OldWard
from govops.inherit.schema import Vendor

CHUNK = 500_000
BAD_WARD = "99999"

# (h) is a non-negative 63-bit hash of (row number, seed); each field reads different bits
_H = "(hashint8extended(i, %(seed)s::bigint) & 9223372036854775807)"

_DOSSIER_FIELDS = {
    "ward": f"CASE WHEN x.h % 2000 = 0 THEN '{BAD_WARD}' ELSE w.ward END",
    "procedure": "'1.00' || lpad(((x.h >> 8) % 9000 + 1000)::text, 4, '0')",
    "status": "((x.h >> 20) % 4)",
    "received": "timestamp '2021-01-01' + ((x.h >> 24) % 126144000) * interval '1 second'",
    "updated": "((x.h >> 3) % 2592000)",
    "sha": "encode(sha256(int8send(x.h)), 'hex')",
}

_SQL = {
    ("a", "dossier"): """
INSERT INTO hoso SELECT i, %(prov)s, w.district, {ward}, {procedure},
  (ARRAY['TIEP_NHAN','DANG_XU_LY','DA_XU_LY','TRA_LAI'])[{status} + 1],
  {received}, {received} + {updated} * interval '1 second', {sha}
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) i CROSS JOIN LATERAL (SELECT {h} AS h) x
JOIN _wards w ON w.n = x.h % %(nwards)s::bigint""",
    ("b", "dossier"): """
INSERT INTO dossiers SELECT i, %(prov)s, w.district, {ward}, {procedure}, {status} + 1,
  extract(epoch FROM ({received}) AT TIME ZONE 'UTC')::bigint,
  extract(epoch FROM ({received}) AT TIME ZONE 'UTC')::bigint + {updated},
  sha256(int8send(x.h))
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) i CROSS JOIN LATERAL (SELECT {h} AS h) x
JOIN _wards w ON w.n = x.h % %(nwards)s::bigint""",
    ("a", "document"): """
INSERT INTO van_ban SELECT i, '000.' || lpad(((x.h >> 4) % 30)::text, 2, '0') || '.'
  || lpad(((x.h >> 9) % 40)::text, 2, '0') || '.H' || %(prov)s,
  ((x.h >> 14) % 9000 + 1)::text || '/'
  || (ARRAY['QĐ-UBND','CV-UBND','TB-UBND','KH-UBND'])[(x.h >> 28) % 4 + 1],
  'Về việc ' || (ARRAY['cấp giấy phép','phê duyệt kế hoạch','báo cáo tình hình',
                       'điều chỉnh dự toán'])[(x.h >> 30) % 4 + 1]
  || ' số ' || i, date '2018-01-01' + ((x.h >> 33) % 2700)::int
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) i CROSS JOIN LATERAL (SELECT {h} AS h) x""",
    ("b", "document"): """
INSERT INTO documents SELECT i, '000.' || lpad(((x.h >> 4) % 30)::text, 2, '0') || '.'
  || lpad(((x.h >> 9) % 40)::text, 2, '0') || '.H' || %(prov)s,
  ((x.h >> 14) % 9000 + 1)::text || '/'
  || (ARRAY['QĐ-UBND','CV-UBND','TB-UBND','KH-UBND'])[(x.h >> 28) % 4 + 1],
  'Regarding item ' || i,
  timestamptz '2018-01-01 00:00+07' + ((x.h >> 33) % 233280000) * interval '1 second'
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) i CROSS JOIN LATERAL (SELECT {h} AS h) x""",
    ("a", "report"): """
INSERT INTO bao_cao SELECT i, w.ward, (2019 + (x.h >> 5) % 6)::text || '-Q' || ((x.h >> 9) % 4 + 1),
  (ARRAY['ho_so_tiep_nhan','ho_so_dung_han','ho_so_tre_han','thu_phi'])[(x.h >> 12) % 4 + 1],
  ((x.h >> 16) % 1000000) / 100.0
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) i CROSS JOIN LATERAL (SELECT {h} AS h) x
JOIN _wards w ON w.n = x.h % %(nwards)s::bigint""",
    ("b", "report"): """
INSERT INTO reports SELECT i, w.ward, date '2019-01-01' + ((x.h >> 5) % 72) * interval '1 month',
  (ARRAY['dossiers_received','dossiers_on_time','dossiers_late',
         'fees_collected'])[(x.h >> 12) % 4 + 1],
  ((x.h >> 16) % 1000000) / 100.0
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) i CROSS JOIN LATERAL (SELECT {h} AS h) x
JOIN _wards w ON w.n = x.h % %(nwards)s::bigint""",
}

# how many documents and reports per dossier
RATIO = {"dossier": 1.0, "document": 0.25, "report": 0.1}


def volumes(volume: int) -> dict[str, int]:
    return {kind: max(1, int(volume * r)) for kind, r in RATIO.items()}


def generate(
    dsn: str,
    vendor: Vendor,
    old_code: str,
    wards: list[OldWard],
    *,
    seed: int,
    volume: int,
    progress: Callable[[str, int], None] = lambda kind, n: None,
) -> dict[str, int]:
    """Create the vendor's tables (emptied) and fill them; returns rows per kind."""
    if not wards:
        raise ValueError(f"old province {old_code} has no wards in the map")
    counts = volumes(volume)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(vendor.ddl)
        conn.execute("TRUNCATE " + ", ".join(vendor.tables.values()))
        conn.execute("CREATE TEMP TABLE _wards (n int PRIMARY KEY, district text, ward text)")
        with conn.cursor().copy("COPY _wards FROM STDIN") as copy:
            for n, w in enumerate(wards):
                copy.write_row((n, w.district_code, w.code))
        for kind, total in counts.items():
            # `%` is modulo in the SQL and a placeholder to psycopg: doubled once here
            sql = _SQL[(vendor.name, kind)].format(h=_H, **_DOSSIER_FIELDS).replace(" % ", " %% ")
            for lo in range(1, total + 1, CHUNK):
                hi = min(total, lo + CHUNK - 1)
                params = {"seed": seed, "prov": old_code, "lo": lo, "hi": hi, "nwards": len(wards)}
                with conn.transaction():
                    conn.execute(sql.encode(), params)
                progress(kind, hi - lo + 1)
        conn.execute("ANALYZE " + ", ".join(vendor.tables.values()))
    return counts
