"""Which pages may call the API from a browser (CORS).

Two kinds of caller: the sites of the browser keys, on the paths a page may use (Segment's and the
forms'), and the Temporal UI on the codec endpoint only. A preflight carries no key, so it is
answered for the origins of every browser key in force; the request that follows is then held to
its own key's origins (api/auth.py, `check_origin`). Any other origin's preflight is refused with
a 403 that says why, and the browser does not send the request.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import is_browser_path

# Segment's library sends Authorization (Basic, the write key) and Content-Type: text/plain;
# forms.js sends Idempotency-Key; X-Retry-Count is the library's retry counter.
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Retry-Count"
EXPOSED_HEADERS = "Retry-After"
PREFLIGHT_MAX_AGE = "600"


class SiteCors:
    def __init__(self, app: ASGIApp, *, temporal_ui_origin: str) -> None:
        self.app = app
        self.codec = CORSMiddleware(
            app,
            allow_origins=[temporal_ui_origin],
            allow_methods=["POST"],
            allow_headers=["Content-Type", "Authorization", "X-Namespace"],
            allow_credentials=True,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path.startswith("/codec/"):
            await self.codec(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None or not is_browser_path(path):
            await self.app(scope, receive, send)
            return
        context = getattr(scope["app"].state, "ctx", None)
        try:
            allowed = context is not None and origin in await context.auth.browser_origins()
        except Exception:
            allowed = False  # the key table cannot be read: the request itself will answer 503
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if preflight:
            await _preflight(send, origin, allowed)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = origin
                out["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
                out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, with_cors)


async def _preflight(send: Send, origin: str, allowed: bool) -> None:
    headers: list[tuple[bytes, bytes]] = [(b"vary", b"Origin")]
    if allowed:
        status, body = 204, b""
        headers += [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", b"GET, POST"),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
        ]
    else:
        status = 403
        detail: dict[str, Any] = {
            "detail": f"origin {origin[:200]!r} is not among any browser key's origins: create a "
            'browser key for it (POST /v1/admin/keys {"scope": "browser", "origins": [...]})'
        }
        body = json.dumps(detail).encode()
        headers += [(b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
