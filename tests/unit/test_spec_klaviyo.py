"""The Klaviyo client and the sandbox's Klaviyo, checked against Klaviyo's own published OpenAPI
document (the cut in `tests/specs/klaviyo/`): every request the client sends is a valid request
body for its operation, and every answer the sandbox gives is a valid response of it, so the
client and the emulator cannot drift from the real API together."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from domain import api_versions
from platforms.klaviyo import KlaviyoClient
from platforms.ports import EmailMessage, Person
from sandbox.app import create_app

SPEC = json.loads((Path(__file__).parent.parent / "specs" / "klaviyo" / "openapi-cut.json").read_text())
PREFIX = "/klaviyo"


def _operation(method: str, path: str) -> dict[str, Any]:
    for template, operations in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "/?$"
        if re.match(pattern, path) and method.lower() in operations:
            operation: dict[str, Any] = operations[method.lower()]
            return operation
    raise AssertionError(f"{method} {path} is not an operation of the published API (or of the cut)")


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


COMPONENTS = _json_schema(SPEC["components"])


def _validate(schema: dict[str, Any], instance: Any, what: str) -> None:
    root = {"components": COMPONENTS, **_json_schema(schema)}
    errors = [
        f"{e.instance_path}: {e.message}" for e in jsonschema_rs.validator_for(root).iter_errors(instance)
    ]
    assert not errors, f"{what}: {errors[:5]}"


class Exchanges:
    """Every request a client sent and the answer it got."""

    def __init__(self) -> None:
        self.seen: list[httpx.Response] = []

    async def record(self, response: httpx.Response) -> None:
        await response.aread()
        self.seen.append(response)


@pytest.fixture
async def exchanges():
    recorded = Exchanges()
    transport = httpx.ASGITransport(app=create_app(seed=11))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox", event_hooks={"response": [recorded.record]}
    ) as http:
        client = KlaviyoClient(
            http,
            base_url=f"http://sandbox{PREFIX}",
            api_key="pk_test",
            revision=api_versions.default("klaviyo_revision"),
        )
        yield client, recorded


async def test_every_request_and_answer_is_in_klaviyos_published_shape(exchanges):
    client, recorded = exchanges
    person = Person(
        email="ada@example-corp.com", first_name="Ada", last_name="Lovelace", company="Example Corp"
    )
    await client.upsert_profile(person, idempotency_key="k-1")
    await client.import_profile("ada@example-corp.com", {"title": "CTO"}, {"lead_source": "webinar"})
    await client.add_to_list("ada@example-corp.com", "WELCOME", idempotency_key="k-2")
    await client.subscribe_to_list("grace@example-corp.com", "WELCOME", source="form:demo")
    await client.list_members("WELCOME")
    await client.find_profile("ada@example-corp.com")
    message = EmailMessage(
        to="ada@example-corp.com", template_id="t-welcome", variables={"n": 1}, subject="Hi"
    )
    await client.send_email(message, idempotency_key="k-3")
    await client.remove_from_list("ada@example-corp.com", "WELCOME", idempotency_key="k-4")
    checked = set()
    for response in recorded.seen:
        request = response.request
        path = request.url.path.removeprefix(PREFIX)
        operation = _operation(request.method, path)
        what = f"{request.method} {path}"
        if request.content:
            schema = operation["requestBody"]["content"]["application/vnd.api+json"]["schema"]
            _validate(schema, json.loads(request.content), f"the client's request to {what}")
        answer = operation["responses"].get(str(response.status_code))
        assert answer is not None, f"{what} answered {response.status_code}, which the API does not document"
        content = answer.get("content", {}).get("application/vnd.api+json")
        if content is not None and response.content:
            _validate(content["schema"], response.json(), f"the sandbox's answer to {what}")
        checked.add(operation["operationId"])
    assert checked >= {
        "create_or_update_profile",
        "bulk_subscribe_profiles",
        "create_event",
        "get_profiles",
        "get_profiles_for_list",
        "remove_profiles_from_list",
    }, checked


def test_the_client_sends_the_revision_it_is_checked_against():
    assert SPEC["info"]["version"] == api_versions.default("klaviyo_revision")
