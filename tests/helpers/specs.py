"""Checking requests and answers against a platform's published OpenAPI document (a cut of it in
`tests/specs/`): each exchange is matched to its operation, the request body validated against
the operation's request schema and the answer against the response schema of its status."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs

from sandbox.app import create_app

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema says it (null is one of the types)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if isinstance(node.get("type"), str):
            converted["type"] = [node["type"], "null"]
        if "enum" in node:
            converted["enum"] = [*node["enum"], None]
    return converted


class PublishedApi:
    """One or more cuts of a platform's OpenAPI documents; `aliases` rewrite our paths to the
    document's where it spells a segment differently (HubSpot's deals are `0-3` there)."""

    def __init__(self, *cuts: str, aliases: dict[str, str] | None = None) -> None:
        self.documents = [json.loads((SPECS / cut).read_text()) for cut in cuts]
        self.aliases = aliases or {}
        self.components = [_json_schema(d["components"]) for d in self.documents]

    def version(self, index: int = 0) -> str:
        return str(self.documents[index]["info"]["version"])

    def operation(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        for old, new in self.aliases.items():
            path = path.replace(old, new)
        for index, document in enumerate(self.documents):
            for template, operations in document["paths"].items():
                pattern = (
                    "^"
                    + re.sub(
                        r"\{[^}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
                    )
                    + "/?$"
                )
                if re.match(pattern, path) and method.lower() in operations:
                    return index, operations[method.lower()]
        raise AssertionError(f"{method} {path} is not an operation of the published API (or of the cut)")

    def validate(self, index: int, schema: dict[str, Any], instance: Any, what: str) -> None:
        root = {"components": self.components[index], **_json_schema(schema)}
        errors = [
            f"{e.instance_path}: {e.message}" for e in jsonschema_rs.validator_for(root).iter_errors(instance)
        ]
        assert not errors, f"{what}: {errors[:5]}"

    def check(self, response: httpx.Response, prefix: str, media_type: str) -> str:
        """Checks one exchange; returns its operation's id."""
        request = response.request
        path = request.url.path.removeprefix(prefix)
        index, operation = self.operation(request.method, path)
        what = f"{request.method} {path}"
        if request.content:
            schema = operation["requestBody"]["content"][media_type]["schema"]
            self.validate(index, schema, json.loads(request.content), f"the client's request to {what}")
        answer = operation["responses"].get(str(response.status_code))
        assert answer is not None, f"{what} answered {response.status_code}, which the API does not document"
        content = answer.get("content", {}).get(media_type) or answer.get("content", {}).get("*/*")
        if content is not None and response.content:
            self.validate(index, content["schema"], response.json(), f"the sandbox's answer to {what}")
        return str(operation["operationId"])


class Exchanges:
    """Every request a client sent and the answer it got (an httpx response hook)."""

    def __init__(self) -> None:
        self.seen: list[httpx.Response] = []

    async def record(self, response: httpx.Response) -> None:
        await response.aread()
        self.seen.append(response)


@asynccontextmanager
async def recorded_sandbox(seed: int) -> AsyncIterator[tuple[httpx.AsyncClient, Exchanges]]:
    """An HTTP client to the sandbox in process (at http://sandbox), every exchange recorded for
    the checks against the published definitions."""
    recorded = Exchanges()
    transport = httpx.ASGITransport(app=create_app(seed=seed))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox", event_hooks={"response": [recorded.record]}
    ) as http:
        yield http, recorded
