"""With codec keys, a failure's message and stack trace reach Temporal encrypted (a platform's
error text often names the address it refused); the worker and the codec endpoint read them back."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from runtime.codec import new_key_spec
from runtime.settings import Settings
from runtime.temporal import data_converter

SECRET = "ada.lovelace@example-corp.com"


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the machine's environment sets (a newcomer's JOURNEYS_API_KEY) is not this test's."""
    for name in [n for n in os.environ if n.startswith("JOURNEYS_")]:
        monkeypatch.delenv(name)


async def test_a_failures_message_and_trace_are_encrypted_and_read_back():
    converter = data_converter(Settings(codec_keys=SecretStr(new_key_spec())))
    failure = Failure()
    try:
        raise ApplicationError(f"klaviyo: 400 invalid email {SECRET}", type="PlatformRejected")
    except ApplicationError as exc:
        await converter.encode_failure(exc, failure)
    assert SECRET not in failure.SerializeToString().decode(errors="replace")
    assert failure.message == "Encoded failure" and failure.HasField("encoded_attributes")
    assert failure.application_failure_info.type == "PlatformRejected", "the error type stays readable"
    back = await converter.decode_failure(failure)
    assert SECRET in str(back)


async def test_without_keys_nothing_changes():
    assert data_converter(Settings()) is pydantic_data_converter
