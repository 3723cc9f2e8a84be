import base64

import pytest

from domain.signatures import (
    SignatureError,
    sign_hubspot_v3,
    sign_standard_webhook,
    sign_timestamped_hmac,
    verify_hubspot_v3,
    verify_standard_webhook,
    verify_timestamped_hmac,
)

BODY = b'{"id":"evt_1","type":"checkout.session.completed"}'
NOW = 1_764_237_600


def test_stripe_style_signature_round_trip():
    header = sign_timestamped_hmac(BODY, "whsec_x", NOW)
    assert verify_timestamped_hmac(header, BODY, "whsec_x", now=NOW + 10) == NOW


@pytest.mark.parametrize(
    ("header", "body", "now", "reason"),
    [
        (None, BODY, NOW, "missing"),
        ("v1=abc", BODY, NOW, "t=<unix seconds>"),
        ("t=abc,v1=def", BODY, NOW, "not a number"),
        (sign_timestamped_hmac(BODY, "other", NOW), BODY, NOW, "no v1 signature matches"),
        (sign_timestamped_hmac(BODY, "whsec_x", NOW), BODY + b" ", NOW, "no v1 signature matches"),
        (sign_timestamped_hmac(BODY, "whsec_x", NOW), BODY, NOW + 301, "tolerance"),
    ],
)
def test_stripe_style_refusals_say_why(header, body, now, reason):
    with pytest.raises(SignatureError, match=reason):
        verify_timestamped_hmac(header, body, "whsec_x", now=now)


def test_any_of_several_v1_signatures_may_match():
    good = sign_timestamped_hmac(BODY, "whsec_x", NOW).split(",")[1]
    assert verify_timestamped_hmac(f"t={NOW},v1=deadbeef,{good}", BODY, "whsec_x", now=NOW)


def test_hubspot_v3_signs_method_uri_body_and_timestamp():
    uri = "https://hooks.example.com/v1/webhooks/hubspot?key=abc"
    ts = str(NOW * 1000)
    signature = sign_hubspot_v3(method="POST", uri=uri, body=BODY, client_secret="s", timestamp_ms=ts)
    verify_hubspot_v3(signature, ts, method="POST", uri=uri, body=BODY, client_secret="s", now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify_hubspot_v3(signature, ts, method="POST", uri=uri + "x", body=BODY, client_secret="s", now=NOW)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_hubspot_v3(signature, ts, method="POST", uri=uri, body=BODY, client_secret="s", now=NOW + 600)


def test_hubspot_decodes_the_characters_it_decodes_before_signing():
    ts = str(NOW * 1000)
    encoded = "https://h.example.com/hook%3Fa%3Ab"
    decoded = "https://h.example.com/hook?a:b"
    signature = sign_hubspot_v3(method="POST", uri=decoded, body=BODY, client_secret="s", timestamp_ms=ts)
    verify_hubspot_v3(signature, ts, method="POST", uri=encoded, body=BODY, client_secret="s", now=NOW)


def test_standard_webhooks_round_trip_and_refusals():
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    signature = sign_standard_webhook("msg_1", NOW, BODY, secret)
    assert signature.startswith("v1,")
    verify_standard_webhook("msg_1", str(NOW), f"v1,bm9wZQ== {signature}", BODY, secret, now=NOW)
    with pytest.raises(SignatureError, match="no v1 signature"):
        verify_standard_webhook("msg_2", str(NOW), signature, BODY, secret, now=NOW)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_standard_webhook("msg_1", str(NOW), signature, BODY, secret, now=NOW - 400)
    with pytest.raises(SignatureError, match="required"):
        verify_standard_webhook(None, str(NOW), signature, BODY, secret, now=NOW)


def test_linkedin_signature_accepts_both_readings_of_the_docs_and_nothing_else():
    import hashlib
    import hmac as hmac_module

    from domain.signatures import linkedin_challenge_response, sign_linkedin, verify_linkedin_signature

    verify_linkedin_signature(sign_linkedin(BODY, "s"), BODY, "s")
    prefixed_body = hmac_module.new(b"s", b"hmacsha256=" + BODY, hashlib.sha256).hexdigest()
    verify_linkedin_signature(prefixed_body, BODY, "s")
    with pytest.raises(SignatureError):
        verify_linkedin_signature(sign_linkedin(BODY, "other"), BODY, "s")
    with pytest.raises(SignatureError, match="required"):
        verify_linkedin_signature(None, BODY, "s")
    assert linkedin_challenge_response("c", "s") == hmac_module.new(b"s", b"c", hashlib.sha256).hexdigest()
