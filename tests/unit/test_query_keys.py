"""A key in a URL lands in access logs: it is read only where no header can be sent (platforms
calling webhooks, a browser's beacon of an abandoned form), and ignored everywhere else."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from api.auth import credentials_from


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
