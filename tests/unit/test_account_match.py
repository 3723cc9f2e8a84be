"""A lead's account, found by its email's registrable domain, then by its company's name."""

import pytest

from domain.account_match import (
    KnownAccount,
    is_personal_domain,
    match_account,
    normalized_company,
    registrable_domain,
)

ACCOUNTS = [
    KnownAccount("acct-acme", "ACME Corporation", ("acme.co.uk", "https://www.acme.com/")),
    KnownAccount("acct-globex", "Globex, Inc.", ("globex.io",)),
    KnownAccount("acct-initech", "Initech GmbH", ()),
    KnownAccount("acct-acme-analytics", "Acme Analytics Ltd", ("acme-analytics.com",)),
    KnownAccount("acct-umbrella-1", "Umbrella Holdings", ()),
    KnownAccount("acct-umbrella-2", "Umbrella Holdings, LLC", ()),  # a duplicate in the CRM
]


@pytest.mark.parametrize(
    ("address", "registered"),
    [
        ("ada@acme.co.uk", "acme.co.uk"),
        ("ada@eu.mail.acme.co.uk", "acme.co.uk"),
        ("https://www.acme.com/pricing", "acme.com"),
        ("Grace@NAVY.MIL", "navy.mil"),
        ("someone@shop.myshopify.com", "shop.myshopify.com"),  # a private suffix: each shop its own
        ("root@localhost", None),
        ("x@192.168.0.1", None),
    ],
)
def test_the_registrable_domain_comes_from_the_bundled_suffix_list(address, registered):
    assert registrable_domain(address) == registered


@pytest.mark.parametrize(
    ("email", "company", "account", "by"),
    [
        ("ada@acme.co.uk", None, "acct-acme", "domain"),
        ("ada@sales.acme.com", "Whatever they typed", "acct-acme", "domain"),  # the domain first
        ("bob@globex.io", None, "acct-globex", "domain"),
        ("carol@gmail.com", "Initech", "acct-initech", "name"),  # webmail: the name pass only
        ("dan@initech-consulting.de", "INITECH gmbh", "acct-initech", "name"),
        ("erin@acme-analytics.com", "ACME", "acct-acme-analytics", "domain"),
        ("frank@unknown.example", "Acme Corp.", "acct-acme", "name"),
    ],
)
def test_a_lead_is_matched_by_domain_then_by_name(email, company, account, by):
    match = match_account(email, company, ACCOUNTS)
    assert match is not None and (match.account_id, match.by) == (account, by)
    assert "@" not in match.reason, "the reason names the domain, never the address"


@pytest.mark.parametrize(
    ("email", "company"),
    [
        ("carol@gmail.com", None),  # a webmail domain never matches an account
        ("carol@acme.co.uk.evil.example", None),  # not acme.co.uk's
        ("gina@unknown.example", "Acme Robotics"),  # close to two Acmes, near neither
        ("hal@unknown.example", "Umbrella Holdings"),  # two accounts as close: no guess
        ("ivan@unknown.example", "   "),
        (None, None),
    ],
)
def test_no_account_is_guessed(email, company):
    assert match_account(email, company, ACCOUNTS) is None


def test_the_scoring_configs_free_mail_list_counts_as_personal():
    assert is_personal_domain("gmail.com") and is_personal_domain("mail.yahoo.com".split("mail.")[1])
    assert not is_personal_domain("example-isp.net")
    assert is_personal_domain("example-isp.net", free_mail=["example-isp.net"])
    accounts = [KnownAccount("acct-isp", "Example ISP", ("example-isp.net",))]
    assert match_account("x@example-isp.net", None, accounts, free_mail=["example-isp.net"]) is None


def test_legal_forms_accents_and_punctuation_are_ignored_in_names():
    assert normalized_company("Société Générale S.A.") == "societe generale"
    assert normalized_company("ACME, Inc.") == normalized_company("Acme Incorporated") == "acme"
    assert normalized_company("Co") == "co", "a name that is only a legal form keeps it"
    match = match_account(None, "acme corp", ACCOUNTS)
    assert match is not None and match.score == 100.0 and match.reason == "company name 'acme' ~ 'acme'"
