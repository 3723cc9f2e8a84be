from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from devstack.always_open import always_open_config
from devstack.processes import free_port
from devstack.stack import DevStack
from runtime.settings import Settings


@asynccontextmanager
async def stack_of_its_own(
    tmp_path_factory: pytest.TempPathFactory, name: str, *, metrics: bool = False
) -> AsyncIterator[DevStack]:
    """The whole engine, started by the same code as `make dev`, on free ports in a temp folder.

    Its reps are on duty and its send windows open around the clock (copies of the seed's roster and
    sequences, `devstack.always_open`): what a test sees must not depend on the hour it runs at.
    """
    data_dir: Path = tmp_path_factory.mktemp(name)
    roster_file, sequences_dir = always_open_config(data_dir / "config")
    settings = Settings(
        data_dir=data_dir,
        api_port=free_port(),
        api_key=SecretStr(f"{name}-test-key"),
        temporal_address=f"127.0.0.1:{free_port()}",
        pg_port=free_port(),
        sandbox_port=free_port(),
        roster_file=roster_file,
        sequences_dir=sequences_dir,
    )
    dev = DevStack(
        settings, durable=False, with_ui=False, worker_metrics_port=free_port() if metrics else None
    )
    await dev.start()
    try:
        yield dev
    finally:
        await dev.stop()


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
