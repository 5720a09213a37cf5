"""The 34 provinces and 3,321 communes after 1 July 2025, from `vietnam_provinces`."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

from vietnam_provinces import Province as _VPProvince
from vietnam_provinces import Ward as _VPWard


@dataclass(frozen=True, slots=True)
class Commune:
    code: int
    codename: str
    name: str
    type: str  # xã, phường or đặc khu
    province: str  # the province's codename

    @property
    def code_str(self) -> str:
        """Official five-digit code, as the national systems write it."""
        return f"{self.code:05d}"


@dataclass(frozen=True, slots=True)
class Province:
    code: int
    codename: str
    name: str
    type: str  # tỉnh or thành phố trung ương
    phone_code: int
    communes: tuple[Commune, ...]

    @property
    def code_str(self) -> str:
        return f"{self.code:02d}"


@dataclass(frozen=True, slots=True)
class LegacyProvince:
    """One of the 63 provinces before 1 July 2025 and the new province it merged into."""

    old_code: str
    old_name: str
    new_code: str
    new_codename: str


@cache
def provinces() -> dict[str, Province]:
    """All 34 provinces by codename, in official code order."""
    by_province: dict[int, list[Commune]] = {}
    codenames = {int(p.code.value): p.codename for p in _VPProvince.iter_all()}
    for ward in _VPWard.iter_all():
        pcode = int(ward.province_code.value)
        by_province.setdefault(pcode, []).append(
            Commune(
                code=int(ward.code.value),
                codename=ward.codename,
                name=ward.name,
                type=ward.division_type.value,
                province=codenames[pcode],
            )
        )
    result: dict[str, Province] = {}
    for p in sorted(_VPProvince.iter_all(), key=lambda p: int(p.code.value)):
        code = int(p.code.value)
        result[p.codename] = Province(
            code=code,
            codename=p.codename,
            name=p.name,
            type=p.division_type.value,
            phone_code=int(p.phone_code),
            communes=tuple(sorted(by_province.get(code, []), key=lambda c: c.code)),
        )
    return result


@cache
def legacy_provinces() -> tuple[LegacyProvince, ...]:
    """The 63 → 34 map (old code, old name, new code, new codename)."""
    text = (
        resources.files("govops.registry")
        .joinpath("data/legacy-provinces.csv")
        .read_text(encoding="utf-8")
    )
    return tuple(
        LegacyProvince(r["old_code"], r["old_name"], r["new_code"], r["new_codename"])
        for r in csv.DictReader(text.splitlines())
    )


def merged_from(codename: str) -> list[LegacyProvince]:
    """The old provinces that became `codename`."""
    return [lp for lp in legacy_provinces() if lp.new_codename == codename]
