"""Starts and stops the whole engine on embedded defaults; `journeys dev` and the e2e tests share it."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.postgres import EmbeddedPostgres
from devstack.processes import ManagedProcess, wait_until
from devstack.temporal import TemporalDevServer
from runtime.codec import new_key_spec
from runtime.settings import Settings
from store.db import create_engine, session_factory
from store.keys import KeyStore
from store.migrate import upgrade

# On one machine, accepting events comes first: the outbox holds what journeys have not taken yet,
# so Temporal, the router and the worker run at a lower CPU priority and catch up after a burst.
JOURNEY_NICENESS = 10
# JOURNEYS_DEV_CPU_POLICY=idle puts them under SCHED_IDLE instead: they run only on CPU the API
# and PostgreSQL leave (see docs/performance.md for what each costs).
JOURNEY_IDLE = os.environ.get("JOURNEYS_DEV_CPU_POLICY", "nice") == "idle"

# How long the sandbox may take to stop before it is killed (see DevStack.stop).
SANDBOX_STOP_SECONDS = 3.0

DEV_WEBHOOK_SECRETS = {
    "JOURNEYS_STRIPE_WEBHOOK_SECRET": "whsec_dev_stripe",
    "JOURNEYS_CALENDLY_WEBHOOK_SIGNING_KEY": "dev-calendly-signing-key",
    "JOURNEYS_HUBSPOT_CLIENT_SECRET": "dev-hubspot-client-secret",
    "JOURNEYS_RESEND_WEBHOOK_SECRET": "whsec_ZGV2LXJlc2VuZC1zZWNyZXQtMzItYnl0ZXMhIQ==",
    "JOURNEYS_FACEBOOK_APP_SECRET": "dev-facebook-app-secret",
    "JOURNEYS_FACEBOOK_VERIFY_TOKEN": "dev-facebook-verify-token",
    "JOURNEYS_LINKEDIN_CLIENT_SECRET": "dev-linkedin-client-secret",
}
# Kit makes its webhook secret itself: `dev` connects the sandbox's Kit to the API at each start
# (`journeys kit connect`), tracking clicks on the link the sandbox's emails carry; and points the
# sandbox HubSpot's dev app webhooks at the API (`journeys hubspot connect`).
DEV_KIT_TRACKED_LINKS = tuple(
    f"https://www.example.com/{page}?utm_source=kit"
    for page in ("pricing", "demo", "customers", "security", "integrations", "blog", "docs", "about")
)
# The platform app ids `dev` runs as (not secrets; the webhooks' loop prevention needs them).
DEV_APP_IDS = {"JOURNEYS_HUBSPOT_APP_ID": "1160452"}
# The dev stack reads the sandbox's email engagement every 2 s, so a click shows within seconds.
DEV_POLLING = {"JOURNEYS_ENGAGEMENT_POLL_SECONDS": "2"}


def _kept_secret(settings: Settings, name: str, make: Callable[[], str]) -> str:
    """A dev secret generated on the first `dev` and kept in the data folder, so restarts agree."""
    path = settings.data_path / name
    if path.exists():
        return path.read_text().strip()
    settings.data_path.mkdir(parents=True, exist_ok=True)
    value = make()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def resolve_api_key(settings: Settings) -> str:
    """The key from env, else the one generated on the first `dev` (kept, so curl lines keep working)."""
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    return _kept_secret(settings, "api_key", lambda: "jrn_dev_" + secrets.token_urlsafe(24))


def resolve_codec(settings: Settings) -> tuple[str, str]:
    """The payload encryption keys and the UI's codec token: from env, else generated and kept."""
    keys = settings.codec_keys.get_secret_value() if settings.codec_keys else None
    token = settings.codec_ui_token.get_secret_value() if settings.codec_ui_token else None
    return (
        keys or _kept_secret(settings, "codec_keys", new_key_spec),
        token or _kept_secret(settings, "codec_ui_token", lambda: secrets.token_urlsafe(24)),
    )


@dataclass
class DevStack:
    settings: Settings
    echo: bool = False
    durable: bool = True
    with_ui: bool = True
    postgres: EmbeddedPostgres | None = None
    temporal: TemporalDevServer | None = None
    children: dict[str, ManagedProcess] = field(default_factory=dict)
    api_key: str = ""
    # The worker's Temporal SDK metrics; None turns them off.
    worker_metrics_port: int | None = 9464
    codec_keys: str = ""
    codec_ui_token: str = ""
    # The secret the sandbox's Kit made for the API's webhook endpoint ("" when env sets one).
    kit_webhook_secret: str = ""

    @property
    def log_dir(self) -> Path:
        return self.settings.data_path / "logs"

    @property
    def database_url(self) -> str:
        return self.settings.database_url or (self.postgres.url() if self.postgres else "")

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "JOURNEYS_DATA_DIR": str(self.settings.data_path),
                "JOURNEYS_API_HOST": self.settings.api_host,
                "JOURNEYS_API_PORT": str(self.settings.api_port),
                "JOURNEYS_API_KEY": self.api_key,
                "JOURNEYS_CODEC_KEYS": self.codec_keys,
                "JOURNEYS_CODEC_UI_TOKEN": self.codec_ui_token,
                "JOURNEYS_TEMPORAL_ADDRESS": self.settings.temporal_address,
                "JOURNEYS_TEMPORAL_NAMESPACE": self.settings.temporal_namespace,
                "JOURNEYS_TEMPORAL_TASK_QUEUE": self.settings.temporal_task_queue,
                "JOURNEYS_DATABASE_URL": self.database_url,
                "JOURNEYS_SANDBOX_HOST": self.settings.sandbox_host,
                "JOURNEYS_SANDBOX_PORT": str(self.settings.sandbox_port),
                "JOURNEYS_FORMS_FILE": str(self.settings.forms_file),
                # A stack may run on other files than the seed's (the tests' always-open hours).
                "JOURNEYS_ROSTER_FILE": str(self.settings.roster_file),
                "JOURNEYS_SEQUENCES_DIR": str(self.settings.sequences_dir),
                "JOURNEYS_ACCEPT_WAIT_SECONDS": str(self.settings.accept_wait_seconds),
                "PYTHONUNBUFFERED": "1",
            }
        )
        # Dev-only webhook secrets, so the sandbox and curl can sign deliveries; production sets its own.
        for variable, value in {**DEV_WEBHOOK_SECRETS, **DEV_APP_IDS, **DEV_POLLING}.items():
            env.setdefault(variable, value)
        if self.kit_webhook_secret:
            env.setdefault("JOURNEYS_KIT_WEBHOOK_SECRET", self.kit_webhook_secret)
        port = self.settings.worker_metrics_port or self.worker_metrics_port
        if port is not None:
            env["JOURNEYS_WORKER_METRICS_PORT"] = str(port)
        # `dev` echoes the children's logs to a console: text reads better there.
        env.setdefault("JOURNEYS_LOG_FORMAT", "text")
        # Traces as JSON lines in logs/traces.jsonl, unless another exporter is asked for.
        env.setdefault("JOURNEYS_OTEL_EXPORTER", "file")
        return env

    def _python_child(
        self, name: str, *args: str, niceness: int = 0, extra_env: dict[str, str] | None = None
    ) -> ManagedProcess:
        return ManagedProcess(
            name,
            [sys.executable, "-m", "cli.main", *args],
            log_file=self.log_dir / f"{name}.log",
            env={**self.child_env(), **(extra_env or {})},
            echo=self.echo,
            stop_signal=signal.SIGTERM,
            niceness=niceness,
            idle=JOURNEY_IDLE and niceness > 0,
        )

    async def start(self) -> None:
        self.settings.data_path.mkdir(parents=True, exist_ok=True)
        self.api_key = resolve_api_key(self.settings)
        self.codec_keys, self.codec_ui_token = resolve_codec(self.settings)
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        if self.settings.database_url is None:
            self.postgres = EmbeddedPostgres(
                self.settings.data_path, self.settings.pg_port, durable=self.durable
            )
            await self.postgres.start(log_dir=self.log_dir)
        await asyncio.to_thread(upgrade, self.database_url)

        if self.settings.temporal_embedded:
            port = self.settings.temporal_address.rpartition(":")[2]
            self.temporal = TemporalDevServer(
                self.settings.data_path / "temporal",
                port=int(port),
                ui_port=self.settings.temporal_ui_port if self.with_ui else None,
                namespace=self.settings.temporal_namespace,
                niceness=JOURNEY_NICENESS,
                idle=JOURNEY_IDLE,
                codec_endpoint=f"{self.settings.api_url}/codec/{self.codec_ui_token}",
            )
            await self.temporal.start(log_dir=self.log_dir)

        sandbox = self._python_child("sandbox", "sandbox")
        self.children["sandbox"] = sandbox
        await sandbox.start()
        await wait_until(
            lambda: _http_ok(f"{self.settings.sandbox_url}/_health"),
            timeout=60,
            what="sandbox",
            process=sandbox,
        )

        if "JOURNEYS_KIT_WEBHOOK_SECRET" not in os.environ and self.settings.kit_base_url is None:
            self.kit_webhook_secret = await self._connect_kit()
        if self.settings.hubspot_base_url is None:
            await self._connect_hubspot()

        worker = self._python_child("worker", "worker", niceness=JOURNEY_NICENESS)
        self.children["worker"] = worker
        await worker.start()

        router = self._python_child("router", "router", niceness=JOURNEY_NICENESS)
        self.children["router"] = router
        await router.start()

        api = self._python_child("api", "api")
        self.children["api"] = api
        await api.start()
        await wait_until(
            lambda: _http_ok(f"{self.settings.api_url}/healthz"), timeout=60, what="API", process=api
        )

    async def _journeys(self, *args: str) -> str:
        """Runs a `journeys` command with the children's environment; returns its output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "cli.main", *args),
            env=self.child_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(
                f"journeys {' '.join(args[:2])} failed: {err.decode(errors='replace')[-2000:]}"
            )
        return out.decode()

    async def _connect_kit(self) -> str:
        """Runs `journeys kit connect` against the sandbox's Kit; returns the secret Kit made."""
        links = [arg for link in DEV_KIT_TRACKED_LINKS for arg in ("--link", link)]
        out = await self._journeys(
            *("kit", "connect", "--secret-only"),
            *("--public-url", self.settings.api_url, "--ingest-key", await self._webhook_ingest_key()),
            *links,
        )
        return out.strip().splitlines()[-1]

    async def _connect_hubspot(self) -> None:
        """Points the sandbox HubSpot's dev app webhooks at the API (`journeys hubspot connect`)."""
        await self._journeys(
            *("hubspot", "connect", "--app-id", DEV_APP_IDS["JOURNEYS_HUBSPOT_APP_ID"]),
            *("--public-url", self.settings.api_url, "--ingest-key", await self._webhook_ingest_key()),
        )

    async def _webhook_ingest_key(self) -> str:
        """The ingest key the sandbox's platforms call the API's webhooks with: kept in the data
        folder while the database still holds it, so restarts do not pile up keys."""
        path = self.settings.data_path / "webhook_ingest_key"
        engine = create_engine(self.database_url, pool_size=1)
        try:
            keys = KeyStore(session_factory(engine))
            if path.exists():
                clear = path.read_text().strip()
                if await keys.find(clear) is not None:
                    return clear
            _, clear = await keys.create("platform webhooks (dev)", "ingest")
        finally:
            await engine.dispose()
        path.write_text(clear + "\n")
        path.chmod(0o600)
        return clear

    async def restart_worker(self, *, kill: bool = True, extra_env: dict[str, str] | None = None) -> None:
        """`extra_env` (e.g. another CRM provider) holds until the next restart without it."""
        async with self.worker_down(kill=kill, extra_env=extra_env):
            pass

    @asynccontextmanager
    async def worker_down(
        self, *, kill: bool = True, extra_env: dict[str, str] | None = None
    ) -> AsyncIterator[None]:
        """The worker is gone inside the block (crashed, or being deployed) and back after it."""
        worker = self.children["worker"]
        await (worker.kill() if kill else worker.stop())
        try:
            yield
        finally:
            replacement = self._python_child(
                "worker", "worker", niceness=JOURNEY_NICENESS, extra_env=extra_env
            )
            self.children["worker"] = replacement
            await replacement.start()

    async def watch(self) -> str:
        """Returns the name of the first child that exits."""
        waits = {asyncio.create_task(p.wait()): name for name, p in self.children.items()}
        for server in (self.temporal, self.postgres):
            if server is not None and server.process is not None:
                waits[asyncio.create_task(server.process.wait())] = server.process.name
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[next(iter(done))]

    async def stop(self) -> None:
        for name in ("api", "router", "worker", "sandbox"):
            if name in self.children:
                # The sandbox waits for its answers in flight, and an answer held by a fault (a
                # test's `hold_after_write_ms`) would keep it up for the whole hold: it has nothing
                # to finish, so it gets a few seconds.
                child = self.children[name]
                await (child.stop(timeout=SANDBOX_STOP_SECONDS) if name == "sandbox" else child.stop())
        if self.temporal is not None:
            await self.temporal.stop()
        if self.postgres is not None:
            await self.postgres.stop()


async def _http_ok(url: str) -> bool:
    async with httpx.AsyncClient(timeout=2.0) as client:
        response = await client.get(url)
        return response.status_code == 200
