"""The API's key table, origins and limits for browser keys (api/auth.py), on a recording fake store."""

import pytest
from fastapi import HTTPException, Request

from api.auth import MISSES_LOOKED_UP_PER_SECOND, Authenticator, Principal
from store.keys import KeyRecord, hash_key

SITE = "https://www.example.com"


class FakeKeys:
    """Records what the authenticator asks the database."""

    def __init__(self, *records: tuple[str, KeyRecord]) -> None:
        self.records = dict(records)
        self.table_reads = 0
        self.lookups = 0

    async def active(self) -> dict[str, KeyRecord]:
        self.table_reads += 1
        return {hash_key(clear): record for clear, record in self.records.items()}

    async def find(self, clear: str) -> KeyRecord | None:
        self.lookups += 1
        return self.records.get(clear)


def record(key_id: str, scope: str = "browser", **extra: object) -> KeyRecord:
    return KeyRecord(key_id, "site", scope, 1000.0, None, None, origins=(SITE,), **extra)  # type: ignore[arg-type]


def request(origin: str | None = SITE, ip: str = "198.51.100.1") -> Request:
    headers = [(b"origin", origin.encode())] if origin else []
    return Request({"type": "http", "headers": headers, "client": (ip, 1234), "query_string": b""})


async def test_a_key_nobody_has_costs_one_look_up_then_none():
    keys = FakeKeys(("jrn_browser_real", record("real")))
    auth = Authenticator(keys, "admin")  # type: ignore[arg-type]
    assert (await auth.principal("jrn_browser_real")) == Principal(
        "real", "browser", 1000.0, frozenset({SITE})
    )
    for _ in range(100):
        assert await auth.principal("jrn_browser_typo") is None
    assert keys.lookups == 1 and keys.table_reads == 1


async def test_a_flood_of_made_up_keys_costs_a_budget_of_look_ups():
    keys = FakeKeys()
    auth = Authenticator(keys, "admin")  # type: ignore[arg-type]
    for n in range(1000):
        assert await auth.principal(f"jrn_browser_{n}") is None
    assert keys.lookups <= 2 * MISSES_LOOKED_UP_PER_SECOND + 1


async def test_a_key_made_elsewhere_works_at_once_and_a_revoke_within_a_reload():
    keys = FakeKeys()
    auth = Authenticator(keys, "admin")  # type: ignore[arg-type]
    assert await auth.principal("jrn_browser_new") is None
    keys.records["jrn_browser_new"] = record("new")
    auth.forget()  # what creating a key on this process does; elsewhere the reload, within 5 s
    assert await auth.principal("jrn_browser_new") is not None
    del keys.records["jrn_browser_new"]
    auth.forget()
    assert await auth.principal("jrn_browser_new") is None
    assert await auth.browser_origins() == frozenset()


async def test_a_browser_key_is_held_to_its_origins_and_its_visitors_shares():
    keys = FakeKeys(("jrn_browser_k", record("k", rate_per_ip=1.0)))
    auth = Authenticator(keys, "admin")  # type: ignore[arg-type]
    principal = await auth.principal("jrn_browser_k")
    assert principal is not None and await auth.browser_origins() == frozenset({SITE})
    for origin, words in [
        (None, "no Origin"),
        ("https://evil.example", "may not use"),
        ("null", "may not use"),
    ]:
        with pytest.raises(HTTPException) as refused:
            auth.admit(request(origin), principal)
        assert refused.value.status_code == 403 and words in str(refused.value.detail)
    auth.admit(request(), principal)
    auth.admit(request(), principal)  # the burst: twice the rate
    with pytest.raises(HTTPException) as limited:
        auth.admit(request(), principal)
    assert limited.value.status_code == 429 and limited.value.headers == {"Retry-After": "1"}
    auth.admit(request(ip="203.0.113.5"), principal)  # another visitor has a share of their own


async def test_scopes_nest_browser_within_ingest_within_admin():
    browser, ingest, admin = (Principal("k", scope, 1.0) for scope in ("browser", "ingest", "admin"))
    assert browser.allows("browser") and not browser.allows("ingest") and not browser.allows("admin")
    assert ingest.allows("browser") and ingest.allows("ingest") and not ingest.allows("admin")
    assert admin.allows("browser") and admin.allows("ingest") and admin.allows("admin")
