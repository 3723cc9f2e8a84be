"""Payloads encrypted at rest in Temporal: AES-256-GCM, keys from env, rotation by key id.

`JOURNEYS_CODEC_KEYS` holds `id:base64key` pairs, comma separated; the first encrypts, all
decrypt, so a key is rotated by putting a new one first and dropping the old one once no
running journey's history still needs it. Payloads written before encryption was turned on
(no `encoding: binary/encrypted`) pass through untouched, so old histories still replay.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
NONCE_BYTES = 12


class CodecKeyError(ValueError):
    pass


def parse_keys(spec: str) -> dict[str, bytes]:
    """`k2:base64,k1:base64` -> {"k2": key, "k1": key}, in order; each key 32 bytes."""
    keys: dict[str, bytes] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key_id, sep, encoded = part.partition(":")
        if not sep or not key_id:
            raise CodecKeyError("each codec key is `id:base64key`")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise CodecKeyError(f"codec key {key_id!r} is not base64") from exc
        if len(key) != 32:
            raise CodecKeyError(f"codec key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")
        keys[key_id] = key
    if not keys:
        raise CodecKeyError("no codec keys given")
    return keys


def new_key_spec(key_id: str = "k1") -> str:
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: dict[str, bytes]) -> None:
        self._current_id, current = next(iter(keys.items()))
        self._current = AESGCM(current)
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = self._current.encrypt(nonce, payload.SerializeToString(), self._current_id.encode())
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, "encryption-key-id": self._current_id.encode()},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            key_id = payload.metadata.get("encryption-key-id", b"").decode()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise CodecKeyError(f"no codec key {key_id!r} among the configured ones; was it rotated out?")
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            plain = Payload()
            plain.ParseFromString(cipher.decrypt(nonce, sealed, key_id.encode()))
            decoded.append(plain)
        return decoded
