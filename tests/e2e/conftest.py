from collections.abc import AsyncIterator

import httpx
import pytest

from devstack.stack import DevStack
from tests.helpers.stack import stack_of_its_own


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevStack]:
    """Shared by the end-to-end tests; the chaos and hostile-input modules start their own."""
    async with stack_of_its_own(tmp_path_factory, "e2e", metrics=True) as dev:
        yield dev


@pytest.fixture
async def api(stack: DevStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.settings.api_url,
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=15.0,
    ) as client:
        yield client


@pytest.fixture
async def sandbox(stack: DevStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.settings.sandbox_url, timeout=10.0) as client:
        await client.post("/_reset")
        yield client


@pytest.fixture
async def hooks(stack: DevStack, api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The API on an ingest key of its own, as platforms call webhooks (`?key=`)."""
    key = (await api.post("/v1/admin/keys", json={"name": "webhooks", "scope": "ingest"})).json()["key"]
    async with httpx.AsyncClient(base_url=stack.settings.api_url, params={"key": key}, timeout=15) as client:
        yield client


@pytest.fixture
async def on_salesforce(stack: DevStack) -> AsyncIterator[None]:
    """The worker runs on Salesforce for the test, then on the default CRM again."""
    await stack.restart_worker(kill=False, extra_env={"JOURNEYS_CRM_PROVIDER": "salesforce"})
    try:
        yield
    finally:
        await stack.restart_worker(kill=False)
