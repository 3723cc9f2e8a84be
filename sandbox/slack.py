"""Slack as the sandbox answers it: the Web API's chat.postMessage and conversations.history, and
incoming webhooks.

Web API answers are HTTP 200 with `{"ok": true, ...}` or `{"ok": false, "error": code}`, as Slack's
are; a 429 carries `Retry-After`. Tokens must look like Slack's (`xoxb-`, `xoxp-`, ...). Messages are
kept per channel with Slack-style `ts` values ("1712345678.000100", increasing), with their metadata;
conversations.history returns them newest first, metadata only when `include_all_metadata` is set,
paged with base64 `next_ts:` cursors as Slack's look. A channel id must look like one (`C`, `G` or `D`
and 8+ capitals or digits); `#name` resolves to a stable id. Mark a channel archived with
`state.table("slack_channels")[id] = {"is_archived": True}`.

Incoming webhooks answer on `/services/T.../B.../secret` with plain text (`ok`, or a code such as
`invalid_payload`, `no_service`, `channel_is_archived`); a webhook posts to the channel named in
`state.table("slack_webhooks")[B...]["channel"]`, else to `C` + its B id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Response
from fastapi.responses import JSONResponse, PlainTextResponse

from sandbox.core import ProviderHandler, register

CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")
WEBHOOK_PATH = re.compile(r"^/services/(T[A-Z0-9]{6,})/(B[A-Z0-9]{6,})/([A-Za-z0-9]{8,})$")
TEAM_ID = "T0SANDBOX1"
BOT_ID = "B0SANDBOX1"
BOT_USER = "U0SANDBOX1"
APP_ID = "A0SANDBOX1"
MAX_TEXT = 40_000
MAX_BLOCKS = 50


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes")


@register("slack")
class Slack(ProviderHandler):
    """chat.postMessage, conversations.history and incoming webhooks."""

    @property
    def messages(self) -> dict[str, Any]:
        return self.state.table("slack_messages")

    @classmethod
    def fault_response(cls, status: int, retry_after: float) -> Response:
        if status == 429:
            return JSONResponse(
                {"ok": False, "error": "ratelimited"},
                status_code=429,
                headers={"Retry-After": f"{retry_after:g}"},
            )
        code = "service_unavailable" if status == 503 else "internal_error"
        return JSONResponse({"ok": False, "error": code}, status_code=status)

    def fail(self, code: str, **extra: Any) -> Response:
        # Slack's Web API reports method errors with HTTP 200.
        return JSONResponse({"ok": False, "error": code, **extra})

    def answer(self) -> Response:
        if self.path.startswith("/services/"):
            return self.webhook()
        method = self.path.removeprefix("/api/")
        if not self.path.startswith("/api/") or method not in (
            "chat.postMessage",
            "conversations.history",
            "conversations.open",
        ):
            return self.fail("unknown_method", req_method=method)
        args = self.arguments()
        if args is None:
            return self.fail("invalid_json")
        auth = self.request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not token:
            return self.fail("not_authed")
        if not token.startswith(("xoxb-", "xoxp-", "xoxa-", "xoxe.")) or token.endswith("-revoked"):
            return self.fail("invalid_auth")
        if method == "chat.postMessage":
            if self.request.method != "POST":
                return self.fail("invalid_request_method")
            return self.post_message(args)
        if method == "conversations.open":
            return self.open_dm(args)
        return self.history(args)

    def open_dm(self, args: dict[str, Any]) -> Response:
        """A direct message with one user: the same `D…` id every time, as Slack answers."""
        users = str(args.get("users") or "").split(",")
        if len(users) != 1 or not re.match(r"^[UW][A-Z0-9]{8,}$", users[0]):
            return self.fail("user_not_found")
        dm = "D" + hashlib.sha1(users[0].encode()).hexdigest()[:10].upper()
        return JSONResponse({"ok": True, "channel": {"id": dm}, "already_open": True, "no_op": True})

    def arguments(self) -> dict[str, Any] | None:
        """Query string, then a JSON or form body, as Slack reads a method's arguments."""
        args: dict[str, Any] = dict(self.request.query_params)
        if isinstance(self.body, dict):
            args.update(self.body)
        elif isinstance(self.body, str) and self.body:
            content_type = self.request.headers.get("content-type", "")
            if "application/json" in content_type:
                return None
            args.update(dict(parse_qsl(self.body)))
        elif self.body is not None:
            return None
        return args

    # --- channels and ts ------------------------------------------------------------------------

    def resolve_channel(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value:
            return None
        if value.startswith("#"):
            return "C" + hashlib.sha1(value[1:].lower().encode()).hexdigest()[:10].upper()
        return value if CHANNEL_ID.match(value) else None

    def next_ts(self) -> str:
        """Slack's `ts`: epoch seconds and six digits, unique and increasing."""
        with self.state.lock:
            clock = self.state.table("slack_clock")
            micros = max(int(time.time() * 1_000_000), int(clock.get("last", 0)) + 1)
            clock["last"] = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def store(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            ts = self.next_ts()
            record = {**message, "type": "message", "ts": ts, "channel": channel, "team": TEAM_ID}
            self.messages[f"{channel}:{ts}"] = record
            self.state.save_records()
        self.effect("created", "message", ts)
        return record

    # --- chat.postMessage -----------------------------------------------------------------------

    def post_message(self, args: dict[str, Any]) -> Response:
        channel = self.resolve_channel(args.get("channel"))
        if channel is None:
            return self.fail("channel_not_found")
        if self.state.table("slack_channels").get(channel, {}).get("is_archived"):
            return self.fail("is_archived")
        text = args.get("text")
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return self.fail("invalid_blocks_format")
        if blocks is not None:
            problem = self.check_blocks(blocks)
            if problem:
                return self.fail("invalid_blocks", response_metadata={"messages": [problem]})
        if not text and not blocks:
            return self.fail("no_text")
        if isinstance(text, str) and len(text) > MAX_TEXT:
            return self.fail("msg_too_long")
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError:
                return self.fail("invalid_metadata_format")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not isinstance(metadata.get("event_payload"), dict)
        ):
            return self.fail("invalid_metadata_format")
        message: dict[str, Any] = {
            "subtype": "bot_message",
            "text": text or "",
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
        }
        if blocks:
            message["blocks"] = blocks
        if metadata:
            message["metadata"] = metadata
        record = self.store(channel, message)
        shown = {k: v for k, v in record.items() if k != "channel"}
        return JSONResponse({"ok": True, "channel": channel, "ts": record["ts"], "message": shown})

    @staticmethod
    def check_blocks(blocks: Any) -> str | None:
        if not isinstance(blocks, list):
            return "[ERROR] must be an array [json-pointer:/blocks]"
        if len(blocks) > MAX_BLOCKS:
            return f"[ERROR] no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"
        for n, block in enumerate(blocks):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                return f"[ERROR] missing required field: type [json-pointer:/blocks/{n}]"
        return None

    # --- conversations.history ------------------------------------------------------------------

    def history(self, args: dict[str, Any]) -> Response:
        channel = args.get("channel")
        if not isinstance(channel, str) or not CHANNEL_ID.match(channel):
            return self.fail("channel_not_found")
        try:
            oldest = float(args.get("oldest") or 0)
            latest = float(args["latest"]) if args.get("latest") else float("inf")
            limit = int(args.get("limit") or 100)
        except (TypeError, ValueError):
            return self.fail("invalid_arguments")
        limit = max(1, min(limit, 999))
        inclusive = _truthy(args.get("inclusive", False))
        cursor = args.get("cursor")
        if cursor:
            try:
                decoded = base64.b64decode(str(cursor)).decode()
                before = float(decoded.removeprefix("next_ts:"))
            except (ValueError, UnicodeDecodeError):
                return self.fail("invalid_cursor")
            latest = min(latest, before)
            inclusive_latest = False
        else:
            inclusive_latest = inclusive
        with_metadata = _truthy(args.get("include_all_metadata", False))

        def within(ts: float) -> bool:
            above = ts >= oldest if inclusive else ts > oldest
            below = ts <= latest if inclusive_latest else ts < latest
            return above and below

        found = sorted(
            (m for m in self.messages.values() if m["channel"] == channel and within(float(m["ts"]))),
            key=lambda m: float(m["ts"]),
            reverse=True,
        )
        page = found[:limit]
        has_more = len(found) > limit
        shown = []
        for record in page:
            item = {k: v for k, v in record.items() if k not in ("channel", "metadata")}
            if with_metadata and "metadata" in record:
                item["metadata"] = record["metadata"]
            shown.append(item)
        payload: dict[str, Any] = {
            "ok": True,
            "messages": shown,
            "has_more": has_more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": ""},
        }
        if has_more:
            next_cursor = base64.b64encode(f"next_ts:{page[-1]['ts']}".encode()).decode()
            payload["response_metadata"] = {"next_cursor": next_cursor}
        return JSONResponse(payload)

    # --- incoming webhooks ----------------------------------------------------------------------

    def webhook(self) -> Response:
        if self.request.method != "POST":
            return PlainTextResponse("invalid_method", status_code=405)
        matched = WEBHOOK_PATH.match(self.path)
        if matched is None:
            return PlainTextResponse("no_service", status_code=404)
        hook_id = matched.group(2)
        hook = self.state.table("slack_webhooks").get(hook_id, {})
        if hook.get("revoked"):
            return PlainTextResponse("no_service", status_code=404)
        if not isinstance(self.body, dict):
            return PlainTextResponse("invalid_payload", status_code=400)
        text = self.body.get("text")
        blocks = self.body.get("blocks")
        if blocks is not None and self.check_blocks(blocks):
            return PlainTextResponse("invalid_blocks", status_code=400)
        if not text and not blocks:
            return PlainTextResponse("no_text", status_code=400)
        channel = str(hook.get("channel") or "C" + hook_id[1:])
        if self.state.table("slack_channels").get(channel, {}).get("is_archived"):
            return PlainTextResponse("channel_is_archived", status_code=410)
        message: dict[str, Any] = {"subtype": "bot_message", "text": text or "", "bot_id": hook_id}
        if blocks:
            message["blocks"] = blocks
        self.store(channel, message)
        return PlainTextResponse("ok")
