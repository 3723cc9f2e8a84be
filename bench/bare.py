"""The bare stack for the hand-off benchmark: a plain SDK workflow that makes one activity call,
a Slack post to the same sandbox, with no journeys code in between."""

from __future__ import annotations

from datetime import timedelta

import httpx
from temporalio import activity, workflow


class BareSlack:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http, self._base_url = http, base_url

    @activity.defn(name="bare.post")
    async def post(self, text: str) -> str:
        response = await self._http.post(
            f"{self._base_url}/slack/api/chat.postMessage",
            json={"channel": "C0BAREBENCH", "text": text},
            headers={"Authorization": "Bearer xoxb-bare"},
        )
        return str(response.json().get("ts"))


@workflow.defn(name="BareNotify")
class BareNotify:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            "bare.post", text, result_type=str, start_to_close_timeout=timedelta(seconds=20)
        )
