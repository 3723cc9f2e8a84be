"""Meta's Graph API (Lead Ads reads) as the sandbox answers it."""

from __future__ import annotations

import uuid

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox.core import ProviderHandler, register


@register("facebook")
class Facebook(ProviderHandler):
    """Meta's Graph API: reading a Lead Ads lead by its leadgen id."""

    def error(
        self, status: int, message: str, code: int, kind: str = "OAuthException", subcode: int | None = None
    ) -> Response:
        error = {"message": message, "type": kind, "code": code, "fbtrace_id": uuid.uuid4().hex[:11]}
        if subcode is not None:
            error["error_subcode"] = subcode
        return JSONResponse({"error": error}, status_code=status)

    def answer(self) -> Response:
        if not self.request.query_params.get("access_token"):
            return self.error(400, "An access token is required to request this resource.", 104)
        parts = self.path.strip("/").split("/")
        if self.request.method != "GET" or len(parts) != 2 or not parts[0].startswith("v"):
            return self.error(400, f"Unsupported {self.request.method} request.", 100, "GraphMethodException")
        lead = self.state.table("facebook_leads").get(parts[1])
        if lead is None:
            return self.error(
                400,
                f"Unsupported get request. Object with ID '{parts[1]}' does not exist",
                100,
                "GraphMethodException",
                subcode=33,
            )
        return JSONResponse(lead)
