"""What a browser key may send: origins, server-only facts, merges (domain/browser.py)."""

import pytest

from domain.browser import (
    IdsNamed,
    fill_only,
    merge_refusal,
    merge_refusals,
    normalize_origin,
    normalize_origins,
    server_only_claim,
)
from domain.events import EventType
from domain.ids import lead_id_for_email, lead_id_for_user


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://www.example.com", "https://www.example.com"),
        ("HTTPS://WWW.Example.COM/", "https://www.example.com"),
        ("https://www.example.com:443", "https://www.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:80", "http://localhost"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ],
)
def test_origins_are_normalized_as_browsers_send_them(given: str, origin: str):
    assert normalize_origin(given) == origin


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("*", "wildcard"),
        ("https://*.example.com", "wildcard"),
        ("www.example.com", "https://"),
        ("ftp://example.com", "https://"),
        ("https://example.com/pricing", "no path"),
        ("https://example.com?x=1", "no path"),
        ("https://user:pw@example.com", "user name"),
        ("https://exa mple.com", "not a host"),
        ("https://bücher.example", "punycode"),
        ("https://example.com:99999", "not an origin"),
        ("null", "https://"),
    ],
)
def test_what_is_not_an_origin_is_refused_saying_why(given: str, words: str):
    with pytest.raises(ValueError, match=words):
        normalize_origin(given)


def test_a_key_lists_each_origin_once():
    assert normalize_origins(["https://a.example", "https://A.example/", "https://b.example"]) == [
        "https://a.example",
        "https://b.example",
    ]


@pytest.mark.parametrize(
    ("event_type", "name", "claim"),
    [
        (EventType.PURCHASE, "Order Completed", "purchase"),
        (EventType.TRACK, "order_completed", "purchase"),
        (EventType.TRACK, " Order  Refunded ", "purchase"),
        (EventType.TRACK, "Subscription Started", "subscription"),
        (EventType.TRACK, "Seats Changed", "purchase"),
        (EventType.EMAIL_OPENED, "Email Opened", "email engagement"),
        (EventType.TRACK, "email-link-clicked", "email engagement"),
        (EventType.EMAIL_UNSUBSCRIBED, "Unsubscribed", "unsubscribe"),
        (EventType.EMAIL_SPAM_COMPLAINT, "Email Marked as Spam", "complaint"),
        (EventType.TRACK, "Deal Amount Changed", "CRM"),
        (EventType.TRACK, "Deal Stage Changed", "CRM"),
        (EventType.DEAL_STAGE_CHANGED, None, "CRM"),
        (EventType.MEETING_BOOKED, None, "calendar"),
    ],
)
def test_server_facts_are_claims_a_browser_cannot_make(event_type: EventType, name: str | None, claim: str):
    found = server_only_claim(event_type, name)
    assert found is not None and claim in found


@pytest.mark.parametrize(
    ("event_type", "name"),
    [
        (EventType.PAGE, "Order Completed"),  # a page may be called anything: it asserts a view
        (EventType.TRACK, "Pricing Viewed"),
        (EventType.TRACK, "Whitepaper Downloaded"),
        (EventType.TRACK, "Checkout Started"),
        (EventType.TRACK, "Email Captured"),
        (EventType.TRACK, "Logged In"),
        (EventType.IDENTIFY, None),
        (EventType.GROUP, None),
        (EventType.FORM_SUBMITTED, "Request a demo"),
        (EventType.FORM_ABANDONED, "Request a demo"),
    ],
)
def test_what_a_browser_witnesses_it_may_send(event_type: EventType, name: str | None):
    assert server_only_claim(event_type, name) is None


ADA = lead_id_for_email("ada@example.com")
EVE = lead_id_for_email("eve@example.com")
USER_ONLY = lead_id_for_user("u-7")


def test_an_anonymous_visitor_identified_by_a_new_email_is_linked():
    assert merge_refusal(IdsNamed(email="new@example.com", anonymous_id="a-1"), {}, set()) is None


def test_an_identify_that_matches_the_visitors_lead_is_fine():
    owners = {("email", "ada@example.com"): ADA, ("anonymous", "a-1"): ADA, ("user", "u-1"): ADA}
    ids = IdsNamed(email="ada@example.com", user_id="u-1", anonymous_id="a-1")
    assert merge_refusal(ids, owners, {ADA}) is None


def test_a_lead_with_an_email_is_never_merged_into_another():
    # Ada's userId named beside Eve's email: the ingest would fold Ada into Eve.
    owners = {("user", "u-ada"): ADA, ("email", "ada@example.com"): ADA}
    refusal = merge_refusal(IdsNamed(email="eve@example.com", user_id="u-ada"), owners, {ADA})
    assert refusal is not None and "merge" in refusal


def test_a_browser_known_as_one_person_is_not_linked_to_another_email():
    owners = {("anonymous", "a-ada"): ADA}
    assert merge_refusal(IdsNamed(email="eve@example.com", anonymous_id="a-ada"), owners, {ADA}) is not None


def test_a_lead_known_by_a_user_id_only_may_be_joined_by_its_email():
    owners = {("user", "u-7"): USER_ONLY}
    assert merge_refusal(IdsNamed(email="eve@example.com", user_id="u-7"), owners, set()) is None


def test_an_alias_may_not_fold_an_identified_lead_into_another():
    owners = {("anonymous", "a-ada"): ADA}
    refusal = merge_refusal(IdsNamed(user_id="u-eve", previous_id="a-ada"), owners, {ADA})
    assert refusal is not None
    assert merge_refusal(IdsNamed(user_id="u-eve", previous_id="a-fresh"), owners, {ADA}) is None


def test_a_batch_cannot_link_an_id_to_one_lead_then_hand_it_to_another():
    named = [
        IdsNamed(email="eve@example.com", user_id="u-new"),
        IdsNamed(email="ada@example.com", user_id="u-new"),
    ]
    assert [index for index, _ in merge_refusals(named, {}, set())] == [1]
    assert merge_refusals(named[:1], {}, set()) == []


def test_a_browser_fills_blanks_and_rewrites_nothing():
    said = {"title": "CEO", "lastName": "Lovelace", "employees": 5000}
    on_record = {"title": "Engineer", "lastName": "", "industry": "Fintech"}
    assert fill_only(said, on_record) == {"lastName": "Lovelace", "employees": 5000}
    assert fill_only(said, {}) == said
