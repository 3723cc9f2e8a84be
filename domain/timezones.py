"""A lead's time zone when it gave none: from its phone number, else from its country, and only
when that names one zone's clock (a Berlin number, France; not "US" or a US toll-free number).

Send windows and a rep's working hours are kept in the lead's zone; a wrong guess sends at 3 am,
so an ambiguous one is no guess (the sequence's own default zone applies). `phonenumbers` carries
the zones of each number prefix and country code.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_zones

UNKNOWN = "Etc/Unknown"
# Two instants half a year apart: zones that agree on both offsets keep the same clock (a
# country's aliases, e.g. London, Jersey, Guernsey and the Isle of Man).
_PROBES = (datetime(2027, 1, 15, 12), datetime(2027, 7, 15, 12))


def _one_clock(zones: Collection[str], preferred: str | None = None) -> str | None:
    known = sorted(z for z in zones if z != UNKNOWN)
    if not known:
        return None
    try:
        offsets = {tuple(p.replace(tzinfo=ZoneInfo(z)).utcoffset() for p in _PROBES) for z in known}
    except ZoneInfoNotFoundError:
        return None
    if len(offsets) != 1:
        return None
    return preferred if preferred in known else known[0]


def _country_zone(country: str) -> str | None:
    region = country.strip().upper()
    code = phonenumbers.country_code_for_region(region)
    if not code:
        return None
    whole = phone_zones.time_zones_for_geographical_number(
        phonenumbers.PhoneNumber(country_code=code, national_number=0)
    )
    example = phonenumbers.example_number(region)
    typical = phone_zones.time_zones_for_number(example) if example is not None else ()
    return _one_clock(whole, preferred=typical[0] if len(typical) == 1 else None)


def inferred_timezone(country: str | None, phone: str | None) -> str | None:
    """The IANA zone for a lead with this ISO country code and phone number, or None."""
    if phone:
        try:
            number = phonenumbers.parse(phone, country.strip().upper() if country else None)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_valid_number(number):
            zone = _one_clock(phone_zones.time_zones_for_number(number))
            if zone is not None:
                return zone
            region = phonenumbers.region_code_for_number(number)
            if region and not country:
                country = region
    return _country_zone(country) if country else None
