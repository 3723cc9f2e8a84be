"""A key in a URL lands in access logs: it is read only where no header can be sent (platforms
calling webhooks, a browser's beacon of an abandoned form), and ignored everywhere else. A key
may be narrower than admin: one job (reports, metrics, a person's export or erasure, the roster)
and nothing else."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from api.auth import FINE_SCOPES, Principal, credentials_from, scope_for


def request(path: str, query: str = "", headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": query.encode(),
            "headers": headers or [],
        }
    )


@pytest.mark.parametrize(
    ("path", "read"),
    [
        ("/v1/webhooks/stripe", True),
        ("/v1/webhooks/kit/link_click", True),
        ("/v1/forms/demo/abandonments", True),
        ("/v1/leads/830805f1-5d16-5e3a-9b1c-7fc0a10c9134", False),
        ("/v1/admin/keys", False),
        ("/v1/forms/demo/submissions", False),
        ("/v1/batch", False),
    ],
)
def test_a_key_in_the_query_is_read_only_where_no_header_can_be_sent(path, read):
    assert credentials_from(request(path, "key=jrn_secret")) == ("jrn_secret" if read else None)


def test_the_header_is_read_everywhere():
    bearer = [(b"authorization", b"Bearer jrn_header")]
    assert credentials_from(request("/v1/leads/x", "key=jrn_query", bearer)) == "jrn_header"


# --- narrow scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/v1/reports/funnel", "reports:read"),
        ("POST", "/v1/reports/runs", "admin"),
        ("GET", "/metrics", "metrics:read"),
        ("GET", "/v1/leads/l-1/export", "pii:export"),
        ("DELETE", "/v1/leads/l-1", "pii:erase"),
        ("GET", "/v1/leads/l-1", "admin"),
        ("PUT", "/v1/roster", "roster:write"),
        ("GET", "/v1/roster", "admin"),
        ("POST", "/v1/webhooks/stripe", "ingest"),
        ("POST", "/v1/batch", "browser"),
    ],
)
def test_each_path_needs_its_scope(method, path, needed):
    assert scope_for(path, method) == needed


@pytest.mark.parametrize("scope", sorted(FINE_SCOPES))
def test_a_narrow_key_does_its_one_job_and_nothing_else_while_admin_does_all(scope):
    narrow = Principal(key_id="k", scope=scope, rate_per_second=10)
    admin = Principal(key_id="a", scope="admin", rate_per_second=10)
    assert narrow.allows(scope) and admin.allows(scope)
    assert not any(narrow.allows(other) for other in ("browser", "ingest", "admin", *(FINE_SCOPES - {scope})))
