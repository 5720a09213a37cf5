"""The old→new commune map, from the published `vietnam-address-converter` dataset.

The package ships the official old→new admin mapping sheet (`admin_mapping_old_to_new`, 10,358
rows: each pre-2025 ward with its district and province, and each new commune it went to). Its
codes are its own, so the new side is joined to the registry's 3,321 communes (from
`vietnam_provinces`) by province and commune name. An old ward whose rows lead to one registry
commune maps; several, or none that joins, is never guessed: the record goes to quarantine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import version
from typing import Any

from govops.paths import cache_dir
from govops.registry.geography import LegacyProvince, legacy_provinces, provinces

DATASET = "vietnam-address-converter"

# One reason per quarantined record, as `inherit status` lists them.
AMBIGUOUS = "old ward maps to several new communes"
UNJOINED = "old ward's new commune is not in the registry"
UNKNOWN_WARD = "old ward code not in the published map"


def name_key(name: str) -> str:
    """A name without its unit word, case, hyphen spacing or tone-mark placement."""
    text = unicodedata.normalize("NFC", name).lower().strip()
    text = re.sub(r"^(thành phố|tỉnh|xã|phường|đặc khu|thị trấn)\s+", "", text)
    text = text.replace("đ", "d")
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return re.sub(r"[\s\-'’]+", " ", text).strip()


@dataclass(frozen=True, slots=True)
class OldWard:
    code: str
    name: str
    district_code: str
    district_name: str
    old_province: str  # official old province code (legacy-provinces.csv), e.g. "02"


@dataclass
class CommuneMap:
    """Old ward code → registry commune code(s); the dataset's coverage of the registry."""

    wards: dict[str, OldWard] = field(default_factory=dict)
    targets: dict[str, frozenset[int]] = field(default_factory=dict)
    unjoined: dict[str, int] = field(default_factory=dict)  # old ward → rows that did not join
    registry_communes: int = 0
    covered_communes: frozenset[int] = frozenset()

    def resolve(self, ward_code: str) -> tuple[int | None, str | None]:
        """(new commune code, None) or (None, the quarantine reason)."""
        if ward_code not in self.wards:
            return None, UNKNOWN_WARD
        codes = self.targets.get(ward_code, frozenset())
        if len(codes) > 1:
            return None, AMBIGUOUS
        if self.unjoined.get(ward_code) or not codes:
            return None, UNJOINED
        return next(iter(codes)), None

    def wards_of(self, old_province: str) -> list[OldWard]:
        return sorted(
            (w for w in self.wards.values() if w.old_province == old_province),
            key=lambda w: (w.district_code, w.code),
        )

    def coverage(self) -> dict[str, int]:
        kinds = {"mapped": 0, "ambiguous": 0, "unjoined": 0}
        for code in self.wards:
            _, reason = self.resolve(code)
            kinds[
                "mapped" if reason is None else "ambiguous" if reason == AMBIGUOUS else "unjoined"
            ] += 1
        return {
            "registry_communes": self.registry_communes,
            "covered_communes": len(self.covered_communes),
            "old_wards": len(self.wards),
            **{f"old_wards_{k}": v for k, v in kinds.items()},
        }


def _old_province_codes() -> dict[str, LegacyProvince]:
    return {name_key(lp.old_name): lp for lp in legacy_provinces()}


@cache
def commune_map() -> CommuneMap:
    """The map, from a JSON cache of this package version's build, else built (≈0.6 s)."""
    path = cache_dir() / "inherit" / f"communes-{version(DATASET)}-{CACHE_FORMAT}.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return _from_json(json.loads(path.read_text(encoding="utf-8")))
    result = build_commune_map()
    with contextlib.suppress(OSError):  # a read-only home only costs the build next time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(_to_json(result)), encoding="utf-8")
        tmp.replace(path)
    return result


CACHE_FORMAT = 1


def _to_json(m: CommuneMap) -> dict[str, Any]:
    return {
        "wards": [
            [w.code, w.name, w.district_code, w.district_name, w.old_province]
            for w in m.wards.values()
        ],
        "targets": {k: sorted(v) for k, v in m.targets.items()},
        "unjoined": m.unjoined,
        "registry_communes": m.registry_communes,
        "covered": sorted(m.covered_communes),
    }


def _from_json(data: dict[str, Any]) -> CommuneMap:
    return CommuneMap(
        wards={w[0]: OldWard(*w) for w in data["wards"]},
        targets={k: frozenset(v) for k, v in data["targets"].items()},
        unjoined={k: int(v) for k, v in data["unjoined"].items()},
        registry_communes=int(data["registry_communes"]),
        covered_communes=frozenset(data["covered"]),
    )


def build_commune_map() -> CommuneMap:
    """The map from the package's table, joined to the registry."""
    from vietnam_address_converter import data

    registry: dict[tuple[str, str], list[int]] = defaultdict(list)
    for province in provinces().values():
        for commune in province.communes:
            registry[(name_key(province.name), name_key(commune.name))].append(commune.code)
    old_codes = _old_province_codes()
    new_province = {k: name_key(v["name"]) for k, v in data.newProvinces.items()}
    result = CommuneMap(registry_communes=sum(len(v) for v in registry.values()))
    targets: dict[str, set[int]] = defaultdict(set)
    for row in data.mapping["rows"]:
        old, new = row["old"], row["new"]
        legacy = old_codes.get(name_key(old["province_name"]))
        if legacy is None:
            continue  # a province name the registry does not know: nothing can route there
        code = old["ward_code"]
        result.wards.setdefault(
            code,
            OldWard(
                code, old["ward_name"], old["district_code"], old["district_name"], legacy.old_code
            ),
        )
        key = (new_province.get(new["province_code"], ""), name_key(new["ward_name"]))
        found = registry.get(key, [])
        if len(found) == 1:
            targets[code].add(found[0])
        else:
            result.unjoined[code] = result.unjoined.get(code, 0) + 1
    result.targets = {k: frozenset(v) for k, v in targets.items()}
    result.covered_communes = frozenset(c for v in targets.values() for c in v)
    return result
