"""The whole engine for end-to-end tests, started by the same code as `make dev`."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

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
    """The whole engine on free ports in a temp folder, stopped on the way out (its logs kept in
    pytest's temp folder `name`).

    Its reps are on duty and its send windows open around the clock (copies of the seed's roster and
    sequences, `devstack.always_open`): what a test sees must not depend on the hour it runs at.

    The folder is not under pytest's own: PostgreSQL runs as another user when the tests run as
    root, and any pytest that starts (a test's own, another session's) makes pytest's folder
    private again, which would take the running database's files away from it.
    """
    data_dir = Path(tempfile.mkdtemp(prefix=f"journeys-{name}-"))
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
        # A click nobody can take (the worker down, on purpose) is answered "resend" sooner.
        accept_wait_seconds=4.0,
    )
    dev = DevStack(
        settings, durable=False, with_ui=False, worker_metrics_port=free_port() if metrics else None
    )
    try:
        await dev.start()
        yield dev
    finally:
        await dev.stop()
        if (data_dir / "logs").is_dir():
            shutil.copytree(data_dir / "logs", tmp_path_factory.mktemp(name) / "logs")
        shutil.rmtree(data_dir, ignore_errors=True)
