"""Which credential a platform client gets from the settings."""

from __future__ import annotations

import os

import pytest

from runtime.settings import Settings


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the machine's environment sets (a newcomer's JOURNEYS_API_KEY) is not this test's."""
    for name in [n for n in os.environ if n.startswith("JOURNEYS_")]:
        monkeypatch.delenv(name)


def test_kit_uses_the_apps_token_when_one_is_set_and_the_key_otherwise():
    assert Settings(kit_api_key="k").kit_credentials() == ("k", None)
    assert Settings(kit_api_key="k", kit_access_token="t").kit_credentials() == (None, "t")
