from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.helpers.temporal import time_skipping_server


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping server for every workflow test. Start workers on it with
    `tests.helpers.temporal.workflow_worker`, which leaves no run behind to stall its clock."""
    async with time_skipping_server() as env:
        yield env
