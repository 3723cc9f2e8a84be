"""Countries as the engine keeps them, ISO 3166-1 alpha-2 codes, from how CRMs and forms spell them
("United States", "USA", "us", "Deutschland"): `pycountry`'s ISO data, with the few everyday names
it does not carry."""

from __future__ import annotations

import pycountry

# Everyday names and codes that are not ISO's own.
ALIASES = {
    "uk": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "great britain": "GB",
    "usa": "US",
    "u.s.": "US",
    "u.s.a.": "US",
    "america": "US",
    "deutschland": "DE",
    "holland": "NL",
    "the netherlands": "NL",
    "south korea": "KR",
    "russia": "RU",
}


def country_code(value: object) -> str | None:
    """The alpha-2 code of a country given by code or name, or None when it names none."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = " ".join(value.split())
    alias = ALIASES.get(text.casefold())
    if alias:
        return alias
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return None
