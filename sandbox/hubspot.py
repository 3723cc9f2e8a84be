"""HubSpot CRM v3 as the sandbox answers it."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox.core import ProviderHandler, now_iso, register


def _hubspot_rate_headers() -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "99",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }


@register("hubspot")
class HubSpot(ProviderHandler):
    """CRM v3 contacts: `batch/upsert` by a unique property, create, read."""

    @property
    def contacts(self) -> dict[str, Any]:
        return self.state.table("hubspot_contacts")

    @classmethod
    def fault_response(cls, status: int, retry_after: float) -> Response:
        headers = {"Retry-After": f"{retry_after:g}"} if status == 429 else {}
        payload = {
            "status": "error",
            "message": "You have reached your secondly limit." if status == 429 else "internal error",
            "category": "RATE_LIMITS" if status == 429 else "INTERNAL_ERROR",
            "correlationId": str(uuid.uuid4()),
        }
        return JSONResponse(payload, status_code=status, headers={**headers, **_hubspot_rate_headers()})

    def error(self, status: int, message: str, category: str) -> Response:
        return JSONResponse(
            {"status": "error", "message": message, "category": category, "correlationId": str(uuid.uuid4())},
            status_code=status,
            headers=_hubspot_rate_headers(),
        )

    def ok(self, payload: Any, status: int = 200) -> Response:
        return JSONResponse(payload, status_code=status, headers=_hubspot_rate_headers())

    def answer(self) -> Response:
        auth = self.request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            return self.error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
        method = self.request.method
        if method == "POST" and self.path == "/crm/v3/objects/contacts/batch/upsert":
            return self.batch_upsert()
        if method == "POST" and self.path == "/crm/v3/objects/contacts":
            return self.create()
        if method == "GET" and self.path.startswith("/crm/v3/objects/contacts/"):
            return self.read(self.path.rsplit("/", 1)[-1])
        return self.error(404, f"No route for {method} {self.path}", "OBJECT_NOT_FOUND")

    def _find(self, prop: str, value: str) -> dict[str, Any] | None:
        value = value.lower() if prop == "email" else value
        for contact in self.contacts.values():
            if prop == "hs_object_id" and contact["id"] == value:
                return contact
            if str(contact["properties"].get(prop, "")).lower() == value.lower():
                return contact
        return None

    def _write(
        self, existing: dict[str, Any] | None, properties: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        now = now_iso()
        clean = {k: ("" if v is None else str(v)) for k, v in properties.items()}
        if "email" in clean:
            clean["email"] = clean["email"].lower()
        if existing is None:
            contact_id = str(len(self.contacts) + 1001)
            existing = {"id": contact_id, "properties": {}, "createdAt": now, "archived": False}
            self.contacts[contact_id] = existing
            created = True
        else:
            created = False
        existing["properties"].update(clean)
        existing["properties"]["hs_object_id"] = existing["id"]
        existing["updatedAt"] = now
        self.state.save_records()
        return existing, created

    def batch_upsert(self) -> Response:
        inputs = self.body.get("inputs") if isinstance(self.body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return self.error(
                400, "Invalid input JSON: `inputs` must be a non-empty array", "VALIDATION_ERROR"
            )
        if len(inputs) > 100:
            return self.error(400, "Batch size must be at most 100", "VALIDATION_ERROR")
        started = now_iso()
        results = []
        with self.state.lock:
            for item in inputs:
                if not isinstance(item, dict) or not item.get("id") or not item.get("idProperty"):
                    return self.error(400, "Each input needs `id` and `idProperty`", "VALIDATION_ERROR")
                properties = item.get("properties") or {}
                if not isinstance(properties, dict):
                    return self.error(400, "`properties` must be an object", "VALIDATION_ERROR")
                prop, value = item["idProperty"], str(item["id"])
                existing = self._find(prop, value)
                contact, created = self._write(existing, {**properties, prop: value})
                results.append({**contact, "new": created})
        return self.ok(
            {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": now_iso()}
        )

    def create(self) -> Response:
        properties = self.body.get("properties") if isinstance(self.body, dict) else None
        if not isinstance(properties, dict):
            return self.error(400, "Invalid input JSON: `properties` is required", "VALIDATION_ERROR")
        with self.state.lock:
            email = properties.get("email")
            if email and (existing := self._find("email", str(email))) is not None:
                return self.error(409, f"Contact already exists. Existing ID: {existing['id']}", "CONFLICT")
            contact, _ = self._write(None, properties)
        return self.ok(contact, status=201)

    def read(self, key: str) -> Response:
        prop = self.request.query_params.get("idProperty", "hs_object_id")
        contact = self._find(prop, key)
        if contact is None:
            return self.error(404, "Object not found.", "OBJECT_NOT_FOUND")
        return self.ok(contact)
