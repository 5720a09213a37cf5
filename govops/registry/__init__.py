"""The registry: provinces and communes, the five systems, national counterparts, estates."""

from govops.registry.catalog import SYSTEM_IDS, Catalog, catalog
from govops.registry.estate import Estate, Host, ProvinceEstate, estate_path, load_estate
from govops.registry.geography import Commune, Province, legacy_provinces, provinces

__all__ = [
    "SYSTEM_IDS",
    "Catalog",
    "Commune",
    "Estate",
    "Host",
    "Province",
    "ProvinceEstate",
    "catalog",
    "estate_path",
    "legacy_provinces",
    "load_estate",
    "provinces",
]
