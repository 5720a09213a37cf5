"""The legacy vendors' source schemas, the canonical record of each kind, the target tables.

Two vendors' shapes, as the old provinces bought them: vendor A (Vietnamese names, local
timestamps without zone, status words) and vendor B (English names, status numbers, epoch
seconds, checksums as bytes). Each vendor's SELECT turns its rows into one canonical record per
kind; the move, the checksum and the deep sample all read through that one SELECT, so the
transform is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from govops.errors import InputError

# kind → the new system that receives it (registry/data/systems.yml)
KIND_SYSTEM = {"dossier": "procedures", "document": "documents", "report": "reporting"}
STATUSES = ("received", "processing", "done", "returned")

# canonical columns per kind (after source_id), with their target types
CANONICAL: dict[str, tuple[tuple[str, str], ...]] = {
    "dossier": (
        ("old_district", "text"),
        ("old_ward", "text"),
        ("procedure_code", "text"),
        ("status", "text"),
        ("received_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("attachment_sha256", "text"),
    ),
    "document": (
        ("agency_code", "text"),
        ("number", "text"),
        ("subject", "text"),
        ("issued_at", "timestamptz"),
    ),
    "report": (
        ("old_ward", "text"),
        ("period", "text"),
        ("indicator", "text"),
        ("value", "numeric"),
    ),
}
# the kinds whose records carry an old ward, remapped to a new commune (or quarantined)
REMAPPED = ("dossier", "report")

# Re-keying: the new id is old province code × 10^13 + the source's id, so two old provinces'
# ids never collide and the id itself says where a record came from.
REKEY_FACTOR = 10**13


def rekey(old_code: str, source_id: int) -> int:
    if not 0 < source_id < REKEY_FACTOR:
        raise ValueError(f"source id {source_id} outside 1..{REKEY_FACTOR - 1}")
    return int(old_code) * REKEY_FACTOR + source_id


def provenance(new_id: int) -> tuple[str, int]:
    """(old province code, source id) back from a re-keyed id."""
    code, source_id = divmod(new_id, REKEY_FACTOR)
    return f"{code:02d}", source_id


@dataclass(frozen=True)
class Vendor:
    name: str
    tables: dict[str, str]  # kind → table
    id_column: dict[str, str]
    select: dict[str, str]  # kind → canonical SELECT list (source_id first)
    ddl: str


VENDOR_A = Vendor(
    name="a",
    tables={"dossier": "hoso", "document": "van_ban", "report": "bao_cao"},
    id_column={"dossier": "ma_ho_so", "document": "id", "report": "id"},
    select={
        "dossier": (
            "ma_ho_so AS source_id, ma_huyen AS old_district, ma_xa AS old_ward, "
            "ma_thu_tuc AS procedure_code, CASE trang_thai WHEN 'TIEP_NHAN' THEN 'received' "
            "WHEN 'DANG_XU_LY' THEN 'processing' WHEN 'DA_XU_LY' THEN 'done' "
            "WHEN 'TRA_LAI' THEN 'returned' END AS status, "
            # vendor A wrote local (Vietnam) wall-clock time without a zone
            "ngay_tiep_nhan AT TIME ZONE 'Asia/Ho_Chi_Minh' AS received_at, "
            "ngay_cap_nhat AT TIME ZONE 'Asia/Ho_Chi_Minh' AS updated_at, "
            "ma_bam_dinh_kem AS attachment_sha256"
        ),
        "document": (
            "id AS source_id, ma_dinh_danh_co_quan AS agency_code, so_ky_hieu AS number, "
            "trich_yeu AS subject, ngay_ban_hanh::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh' "
            "AS issued_at"
        ),
        "report": (
            "id AS source_id, ma_xa AS old_ward, ky_bao_cao AS period, chi_tieu AS indicator, "
            "gia_tri AS value"
        ),
    },
    ddl="""
CREATE TABLE IF NOT EXISTS hoso (
  ma_ho_so bigint PRIMARY KEY, ma_tinh text NOT NULL, ma_huyen text NOT NULL, ma_xa text NOT NULL,
  ma_thu_tuc text NOT NULL,
  trang_thai text NOT NULL CHECK (trang_thai IN ('TIEP_NHAN','DANG_XU_LY','DA_XU_LY','TRA_LAI')),
  ngay_tiep_nhan timestamp NOT NULL, ngay_cap_nhat timestamp NOT NULL, ma_bam_dinh_kem text);
CREATE TABLE IF NOT EXISTS van_ban (
  id bigint PRIMARY KEY, ma_dinh_danh_co_quan text NOT NULL, so_ky_hieu text NOT NULL,
  trich_yeu text NOT NULL, ngay_ban_hanh date NOT NULL);
CREATE TABLE IF NOT EXISTS bao_cao (
  id bigint PRIMARY KEY, ma_xa text NOT NULL, ky_bao_cao text NOT NULL, chi_tieu text NOT NULL,
  gia_tri numeric NOT NULL);
""",
)

VENDOR_B = Vendor(
    name="b",
    tables={"dossier": "dossiers", "document": "documents", "report": "reports"},
    id_column={"dossier": "id", "document": "doc_id", "report": "report_id"},
    select={
        "dossier": (
            "id AS source_id, district_code AS old_district, ward_code AS old_ward, "
            "procedure_code, (ARRAY['received','processing','done','returned'])[status] "
            "AS status, to_timestamp(received_epoch) AS received_at, "
            "to_timestamp(updated_epoch) AS updated_at, "
            "encode(attachments_digest, 'hex') AS attachment_sha256"
        ),
        "document": (
            "doc_id AS source_id, issuer_code AS agency_code, doc_number AS number, "
            "title AS subject, issued_on AS issued_at"
        ),
        "report": (
            "report_id AS source_id, ward_code AS old_ward, to_char(period_start, 'YYYY-MM') "
            "AS period, metric AS indicator, amount AS value"
        ),
    },
    ddl="""
CREATE TABLE IF NOT EXISTS dossiers (
  id bigint PRIMARY KEY, province_code text NOT NULL, district_code text NOT NULL,
  ward_code text NOT NULL, procedure_code text NOT NULL,
  status smallint NOT NULL CHECK (status BETWEEN 1 AND 4),
  received_epoch bigint NOT NULL, updated_epoch bigint NOT NULL, attachments_digest bytea);
CREATE TABLE IF NOT EXISTS documents (
  doc_id bigint PRIMARY KEY, issuer_code text NOT NULL, doc_number text NOT NULL,
  title text NOT NULL, issued_on timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
  report_id bigint PRIMARY KEY, ward_code text NOT NULL, period_start date NOT NULL,
  metric text NOT NULL, amount numeric NOT NULL);
""",
)

VENDORS = {v.name: v for v in (VENDOR_A, VENDOR_B)}


def detect_vendor(conn: psycopg.Connection[tuple[object, ...]], source: str) -> Vendor:
    """Which vendor's schema a source holds; one it does not know is bad input (exit 2)."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchall()
    tables = {str(r[0]) for r in rows}
    for vendor in VENDORS.values():
        if set(vendor.tables.values()) <= tables:
            return vendor
    raise InputError(
        source,
        "schema",
        "a known legacy schema: vendor a (hoso, van_ban, bao_cao) or vendor b "
        "(dossiers, documents, reports)",
        got=sorted(tables)[:6],
    )


def business_text(kind: str, alias: str = "") -> str:
    """The record's business fields as one text, the unit of checksums and comparisons."""
    prefix = f"{alias}." if alias else ""
    cols = ["source_id", *(c for c, _ in CANONICAL[kind])]
    parts = ", ".join(f"coalesce({prefix}{c}::text, '~')" for c in cols)
    return f"concat_ws('|', {parts})"


def business_hash(kind: str, alias: str) -> str:
    """A 64-bit hash of the record's business fields, each by its type's own hash function (no
    text conversion: a third of the cost). Source and target columns have the same types (the
    move copies in binary), so equal records hash equal on both sides."""
    cols = ", ".join(f"{alias}.{c}" for c in ["source_id", *(c for c, _ in CANONICAL[kind])])
    return f"hash_record_extended(({cols}), 0)"


def target_table(kind: str) -> str:
    return f"inherit_{kind}"


def target_ddl() -> str:
    """The tables the new systems' databases gain to receive legacy records."""
    parts = []
    for kind, cols in CANONICAL.items():
        body = ", ".join(f"{c} {t}" for c, t in cols)
        extra = ", commune_code integer NOT NULL" if kind in REMAPPED else ""
        parts.append(
            f"CREATE TABLE IF NOT EXISTS {target_table(kind)} (id bigint PRIMARY KEY, "
            f"source text NOT NULL, source_id bigint NOT NULL, {body}{extra});"
        )
    parts.append(
        """
CREATE TABLE IF NOT EXISTS inherit_quarantine (
  kind text NOT NULL, source text NOT NULL, source_id bigint NOT NULL, old_ward text,
  reason text NOT NULL, record text NOT NULL, record_hash bigint NOT NULL,
  PRIMARY KEY (kind, source, source_id));
CREATE TABLE IF NOT EXISTS inherit_checkpoint (
  source text NOT NULL, kind text NOT NULL, last_id bigint NOT NULL DEFAULT 0,
  moved bigint NOT NULL DEFAULT 0, quarantined bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (source, kind));
CREATE TABLE IF NOT EXISTS inherit_commune_map (
  old_ward text PRIMARY KEY, commune_code integer, reason text);
CREATE TABLE IF NOT EXISTS inherit_verification (
  source text NOT NULL, kind text NOT NULL, verified_at timestamptz NOT NULL DEFAULT now(),
  ok boolean NOT NULL, source_count bigint NOT NULL, moved bigint NOT NULL,
  quarantined bigint NOT NULL, mismatches bigint NOT NULL, detail text NOT NULL,
  PRIMARY KEY (source, kind));
"""
    )
    return "\n".join(parts)
