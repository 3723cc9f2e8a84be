import pytest
from temporalio.api.common.v1 import Payload

from runtime.codec import CodecKeyError, EncryptionCodec, new_key_spec, parse_keys

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"email":"ada@example.com"}')


async def test_round_trip_and_no_clear_text():
    codec = EncryptionCodec(parse_keys(new_key_spec("k1")))
    (sealed,) = await codec.encode([PLAIN])
    assert b"ada@example.com" not in sealed.SerializeToString()
    assert sealed.metadata["encryption-key-id"] == b"k1"
    assert await codec.decode([sealed]) == [PLAIN]


async def test_rotation_keeps_old_payloads_readable():
    old_spec = new_key_spec("k1")
    (old,) = await EncryptionCodec(parse_keys(old_spec)).encode([PLAIN])
    rotated = EncryptionCodec(parse_keys(f"{new_key_spec('k2')},{old_spec}"))
    (new,) = await rotated.encode([PLAIN])
    assert new.metadata["encryption-key-id"] == b"k2"
    assert await rotated.decode([old, new]) == [PLAIN, PLAIN]
    with pytest.raises(CodecKeyError, match="rotated out"):
        await EncryptionCodec(parse_keys(new_key_spec("k2"))).decode([old])


async def test_payloads_from_before_encryption_pass_through():
    codec = EncryptionCodec(parse_keys(new_key_spec()))
    assert await codec.decode([PLAIN]) == [PLAIN]


async def test_tampering_is_detected():
    codec = EncryptionCodec(parse_keys(new_key_spec()))
    (sealed,) = await codec.encode([PLAIN])
    sealed.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        await codec.decode([sealed])


@pytest.mark.parametrize("spec", ["", "k1", "k1:not base64!", "k1:c2hvcnQ="])
def test_bad_key_specs_say_why(spec):
    with pytest.raises(CodecKeyError):
        parse_keys(spec)
