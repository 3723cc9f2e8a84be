"""The bare stack's activity for the hand-off benchmark: a Slack post to the same sandbox, with no
journeys code in between (the workflow is in `bench/bare_workflow.py`)."""

from __future__ import annotations

import httpx
from temporalio import activity


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
