"""Klaviyo's JSON:API as the sandbox answers it."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from sandbox.core import ProviderHandler, now_iso, register


@register("klaviyo")
class Klaviyo(ProviderHandler):
    """Klaviyo's JSON:API: profile import (upsert by email), list subscription jobs, profile reads."""

    @property
    def profiles(self) -> dict[str, Any]:
        return self.state.table("klaviyo_profiles")

    @property
    def lists(self) -> dict[str, Any]:
        return self.state.table("klaviyo_lists")

    def error(self, status: int, code: str, detail: str, pointer: str | None = None) -> Response:
        error: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "status": status,
            "code": code,
            "title": code,
            "detail": detail,
        }
        if pointer:
            error["source"] = {"pointer": pointer}
        return JSONResponse({"errors": [error]}, status_code=status, media_type="application/vnd.api+json")

    def answer(self) -> Response:
        auth = self.request.headers.get("authorization", "")
        if not auth.startswith("Klaviyo-API-Key ") or len(auth) <= len("Klaviyo-API-Key "):
            return self.error(401, "not_authenticated", "Authentication credentials were not provided.")
        if not self.request.headers.get("revision"):
            return self.error(400, "invalid", "The `revision` header is required.")
        method = self.request.method
        if method == "POST" and self.path == "/api/profile-import":
            return self.profile_import()
        if method == "POST" and self.path == "/api/profile-subscription-bulk-create-jobs":
            return self.subscribe()
        if method == "GET" and self.path == "/api/profiles":
            return self.list_profiles()
        return self.error(404, "not_found", f"No route for {method} {self.path}")

    def _profile_by_email(self, email: str) -> dict[str, Any] | None:
        for profile in self.profiles.values():
            if profile["attributes"].get("email") == email.lower():
                return profile
        return None

    def profile_import(self) -> Response:
        data = self.body.get("data") if isinstance(self.body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile":
            return self.error(400, "invalid", "`data.type` must be `profile`", "/data/type")
        attributes = data.get("attributes") or {}
        email = attributes.get("email")
        if not isinstance(email, str) or "@" not in email:
            return self.error(
                400, "invalid", "A profile needs an identifier: email", "/data/attributes/email"
            )
        with self.state.lock:
            profile = self._profile_by_email(email)
            created = profile is None
            if profile is None:
                profile_id = "01" + uuid.uuid4().hex[:24].upper()
                profile = {
                    "type": "profile",
                    "id": profile_id,
                    "attributes": {"properties": {}, "created": now_iso()},
                }
                self.profiles[profile_id] = profile
            properties = attributes.get("properties") or {}
            profile["attributes"].update({k: v for k, v in attributes.items() if k != "properties"})
            profile["attributes"]["email"] = email.lower()
            profile["attributes"]["properties"].update(properties)
            profile["attributes"]["updated"] = now_iso()
            self.state.save_records()
        return JSONResponse(
            {"data": profile, "links": {"self": f"/api/profiles/{profile['id']}/"}},
            status_code=201 if created else 200,
            media_type="application/vnd.api+json",
        )

    def subscribe(self) -> Response:
        data = self.body.get("data") if isinstance(self.body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile-subscription-bulk-create-job":
            return self.error(
                400, "invalid", "`data.type` must be `profile-subscription-bulk-create-job`", "/data/type"
            )
        try:
            list_id = data["relationships"]["list"]["data"]["id"]
            entries = data["attributes"]["profiles"]["data"]
        except (KeyError, TypeError):
            return self.error(400, "invalid", "a list relationship and profiles are required", "/data")
        with self.state.lock:
            members = self.lists.setdefault(list_id, {"members": []})["members"]
            for entry in entries:
                email = str(entry.get("attributes", {}).get("email", "")).lower()
                if not email:
                    return self.error(
                        400, "invalid", "each profile needs an email", "/data/attributes/profiles"
                    )
                profile = self._profile_by_email(email)
                if profile is None:
                    profile_id = "01" + uuid.uuid4().hex[:24].upper()
                    profile = {
                        "type": "profile",
                        "id": profile_id,
                        "attributes": {"email": email, "properties": {}},
                    }
                    self.profiles[profile_id] = profile
                profile["attributes"]["subscriptions"] = {"email": {"marketing": {"consent": "SUBSCRIBED"}}}
                if email not in members:
                    members.append(email)
            self.state.save_records()
        return Response(status_code=202)

    def list_profiles(self) -> Response:
        wanted = self.request.query_params.get("filter", "")
        profiles = list(self.profiles.values())
        if wanted.startswith("equals(email,"):
            email = wanted[len("equals(email,") : -1].strip("'\"").lower()
            profiles = [p for p in profiles if p["attributes"].get("email") == email]
        return JSONResponse({"data": profiles, "links": {}}, media_type="application/vnd.api+json")
