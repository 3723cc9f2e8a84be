"""Child processes that die with their parent and leave their output in a log file."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _child_setup(uid: int | None, gid: int | None, niceness: int, idle: bool = False) -> Callable[[], None]:
    def setup() -> None:
        if niceness:
            os.nice(niceness)
        if idle and hasattr(os, "SCHED_IDLE"):
            # Runs only when nothing else wants the CPU: a woken request handler preempts it at once.
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        # After any credential change, which would clear it: a supervisor killed by SIGKILL still
        # takes its children with it, so no server outlives `dev`.
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log_file: Path,
        env: dict[str, str] | None = None,
        echo: bool = False,
        uid: int | None = None,
        gid: int | None = None,
        stop_signal: signal.Signals = signal.SIGINT,
        cwd: Path | None = None,
        niceness: int = 0,
        idle: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_file = log_file
        self.env = env
        self.echo = echo
        self.uid, self.gid = uid, gid
        self.stop_signal = stop_signal
        self.cwd = cwd
        self.niceness = niceness
        self.idle = idle
        self.process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            preexec_fn=_child_setup(self.uid, self.gid, self.niceness, self.idle),
        )
        self._pump = asyncio.create_task(self._pump_output())

    async def _pump_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_file.open("ab") as log:
            async for line in self.process.stdout:
                log.write(line)
                log.flush()
                if self.echo:
                    sys.stdout.write(f"{self.name:>8} | {line.decode(errors='replace')}")
                    sys.stdout.flush()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def wait(self) -> int:
        assert self.process is not None
        return await self.process.wait()

    async def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(self.stop_signal)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._pump, 5)

    async def kill(self) -> None:
        """SIGKILL, no goodbye: what a crash looks like to everything else."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def port_is_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    check: Callable[[], object], *, timeout: float, what: str, process: ManagedProcess | None = None
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
        except Exception:
            pass
        if process is not None and not process.running:
            raise RuntimeError(f"{what}: {process.name} exited early:\n{process.tail()}")
        if loop.time() > deadline:
            tail = f":\n{process.tail()}" if process else ""
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s{tail}")
        await asyncio.sleep(0.1)
