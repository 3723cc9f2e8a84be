"""The receiver of outbound webhooks."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox.core import ProviderHandler, register


@register("webhook")
class WebhookSink(ProviderHandler):
    """Any outbound webhook: accepted and logged, so journeys can post to `/webhook/<name>`."""

    def answer(self) -> Response:
        if self.request.method not in ("POST", "PUT"):
            return JSONResponse({"error": "webhooks are POSTed"}, status_code=405)
        return Response(status_code=202)
