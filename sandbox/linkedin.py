"""LinkedIn Lead Sync reads as the sandbox answers it."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox.core import ProviderHandler, register


@register("linkedin")
class LinkedIn(ProviderHandler):
    """LinkedIn Lead Sync reads: form responses and forms, as `/rest/...` with a bearer token."""

    def error(self, status: int, message: str, code: str) -> Response:
        return JSONResponse(
            {"status": status, "serviceErrorCode": 100, "code": code, "message": message}, status_code=status
        )

    def answer(self) -> Response:
        if not self.request.headers.get("authorization", "").startswith("Bearer "):
            return self.error(401, "Empty oauth2 access token", "EMPTY_ACCESS_TOKEN")
        if not self.request.headers.get("linkedin-version"):
            return self.error(
                400,
                "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
                "VERSION_MISSING",
            )
        version = self.request.headers["linkedin-version"]
        if not _served(version, datetime.now(UTC).date()):
            return self.error(426, f"Requested version {version} is not active", "VERSION_NOT_ACTIVE")
        parts = self.path.strip("/").split("/")
        if self.request.method == "GET" and len(parts) == 3 and parts[0] == "rest":
            table = {"leadFormResponses": "linkedin_responses", "leadForms": "linkedin_forms"}.get(parts[1])
            if table is not None:
                found = self.state.table(table).get(parts[2])
                if found is not None:
                    return JSONResponse(found)
                return self.error(404, f"Not found: {parts[2]}", "NOT_FOUND")
        return self.error(404, f"No resource for {self.request.method} {self.path}", "NOT_FOUND")


def _served(version: str, today: date) -> bool:
    """LinkedIn serves each monthly version (`YYYYMM`, or `YYYYMM.NN` for a patch) for a year;
    after it answers 426. Its own table is the authority; the sandbox keeps to the policy."""
    month = version.split(".")[0]
    if len(month) != 6 or not month.isdigit() or not 1 <= int(month[4:]) <= 12:
        return False
    released = date(int(month[:4]), int(month[4:]), 1)
    return released <= today < date(released.year + 1, released.month, 15)
