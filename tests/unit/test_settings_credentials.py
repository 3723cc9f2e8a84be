"""Which credential a platform client gets from the settings."""

from __future__ import annotations

from runtime.settings import Settings


def test_kit_uses_the_apps_token_when_one_is_set_and_the_key_otherwise():
    assert Settings(kit_api_key="k").kit_credentials() == ("k", None)
    assert Settings(kit_api_key="k", kit_access_token="t").kit_credentials() == (None, "t")
