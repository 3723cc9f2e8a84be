"""A lead's time zone from its phone number or country, when it gave none, and no guess when
either names more than one clock."""

import pytest

from domain.timezones import inferred_timezone


@pytest.mark.parametrize(
    ("country", "phone", "zone"),
    [
        ("DE", None, "Europe/Berlin"),
        ("fr", None, "Europe/Paris"),
        ("GB", None, "Europe/London"),  # London, Jersey, Guernsey, Man: one clock, London named
        (None, "+49 30 901820", "Europe/Berlin"),
        ("US", "+1 415 555 0100", "America/Los_Angeles"),  # the area code names the zone
        ("US", "(212) 555-0100", "America/New_York"),  # national format, read in the lead's country
        (None, "+33 1 23 45 67 89", "Europe/Paris"),
        ("DE", "+1 415 555 0100", "America/Los_Angeles"),  # the phone is the better witness
    ],
)
def test_a_zone_is_inferred_when_one_clock_is_named(country, phone, zone):
    assert inferred_timezone(country, phone) == zone


@pytest.mark.parametrize(
    ("country", "phone"),
    [
        ("US", None),  # six clocks
        ("AU", None),
        ("US", "+1 800 555 0100"),  # toll-free: nowhere in particular
        (None, "not a number"),
        ("ZZ", None),
        (None, None),
    ],
)
def test_no_guess_when_the_clock_is_ambiguous_or_unknown(country, phone):
    assert inferred_timezone(country, phone) is None
