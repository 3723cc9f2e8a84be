"""`journeys dev | worker | api | sandbox | migrate | register-search-attributes | doctor | simulate |
keys | new | sequences | kit | hubspot`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from runtime.production import refuse_unsafe_defaults
from runtime.settings import Settings
from store.keys import SCOPES


def _logging(settings: Settings) -> None:
    from runtime.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)


def cmd_dev(settings: Settings) -> int:
    from devstack.stack import DevStack

    stack = DevStack(settings, echo=True)

    async def run() -> int:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        print(f"journeys: starting the engine in {settings.data_path} ...", flush=True)
        start = asyncio.create_task(stack.start())
        stop_wait = asyncio.create_task(stopping.wait())
        await asyncio.wait({start, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if stopping.is_set():
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
            await stack.stop()
            return 130
        stop_wait.cancel()
        start.result()
        ui = f"http://localhost:{settings.temporal_ui_port}" if settings.temporal_embedded else "(external)"
        print(
            "\n".join(
                [
                    "",
                    "journeys is up",
                    f"  API          {settings.api_url}   (docs: {settings.api_url}/docs)",
                    f"  API key      {stack.api_key}",
                    f"  Temporal     {settings.temporal_address}   UI: {ui}",
                    f"  PostgreSQL   {stack.database_url}",
                    f"  Sandbox      {settings.sandbox_url}   (call log: {settings.sandbox_url}/_calls)",
                    f"  Logs         {stack.log_dir}",
                    "",
                    "Try:",
                    f"  curl -X POST {settings.api_url}/v1/forms/demo/submissions \\",
                    f"    -H 'Authorization: Bearer {stack.api_key}' -H 'Content-Type: application/json' \\",
                    '    -d \'{"email":"ada@example-corp.com","first_name":"Ada","company":"Example Corp",'
                    '"job_title":"CTO","lead_source":"webinar","consent":true}\'',
                    "",
                    "Ctrl-C stops everything.",
                    "",
                ]
            ),
            flush=True,
        )
        watch = asyncio.create_task(stack.watch())
        stop_wait = asyncio.create_task(stopping.wait())
        await asyncio.wait({watch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if watch.done():
            print(f"journeys: {watch.result()} exited; stopping everything", flush=True)
            code = 1
        else:
            watch.cancel()
        print("journeys: stopping ...", flush=True)
        await stack.stop()
        print("journeys: stopped", flush=True)
        return code

    return asyncio.run(run())


def cmd_worker(settings: Settings) -> int:
    from workers.main import main

    refuse_unsafe_defaults(settings, "worker")
    main(settings)
    return 0


def cmd_router(settings: Settings) -> int:
    from routing.dispatcher import run_router
    from runtime.telemetry import setup_tracing

    refuse_unsafe_defaults(settings, "router")
    provider = setup_tracing("journeys-router", settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_router(settings, stop=stop)

    asyncio.run(run())
    if provider is not None:
        provider.shutdown()
    return 0


def cmd_api(settings: Settings) -> int:
    import uvicorn

    from api.app import create_app
    from devstack.stack import resolve_api_key

    refuse_unsafe_defaults(settings, "api")
    api_key = resolve_api_key(settings)
    if settings.api_key is None:
        print(f"journeys api: JOURNEYS_API_KEY unset; using {api_key}", flush=True)
    from runtime.telemetry import setup_tracing

    setup_tracing("journeys-api", settings)
    app = create_app(settings, api_key=api_key)
    # Longer than clients' pools keep idle connections, so a reused connection is never half-closed.
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=75,
    )
    return 0


def cmd_sandbox(settings: Settings) -> int:
    import uvicorn

    from sandbox.app import create_app

    app = create_app(state_dir=settings.data_path / "sandbox")
    uvicorn.run(app, host=settings.sandbox_host, port=settings.sandbox_port, log_level="warning")
    return 0


def cmd_migrate(settings: Settings) -> int:
    from store.migrate import upgrade

    if settings.database_url is None:
        print("set JOURNEYS_DATABASE_URL (dev migrates the embedded database itself)", file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    return 0


def cmd_register_search_attributes(settings: Settings) -> int:
    from runtime.temporal import connect, register_search_attributes

    async def run() -> list[str]:
        return await register_search_attributes(await connect(settings))

    added = asyncio.run(run())
    print("added: " + (", ".join(added) if added else "nothing, all present"))
    return 0


def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    from domain.browser import normalize_origins
    from store.db import create_engine, session_factory
    from store.keys import KeyStore, default_rate

    async def run() -> int:
        engine = create_engine(settings.effective_database_url, pool_size=1)
        keys = KeyStore(session_factory(engine))
        try:
            if args.action == "create":
                try:
                    origins = normalize_origins(args.origin or [])
                    record, clear = await keys.create(
                        args.name,
                        args.scope,
                        args.rate or default_rate(args.scope),
                        origins=origins,
                        rate_per_ip=args.rate_per_ip,
                    )
                except ValueError as exc:
                    print(f"journeys keys create: {exc}", file=sys.stderr)
                    return 2
                print(f"created {record.scope} key {record.key_id} ({record.name}); shown once, keep it:")
                print(clear)
                if record.origins:
                    print("for pages of: " + ", ".join(record.origins))
            elif args.action == "list":
                for record in await keys.list():
                    state = f"revoked {record.revoked_at:%Y-%m-%d}" if record.revoked_at else "active"
                    rate = f"{record.rate_per_second:>8g}/s"
                    sites = f"  [{', '.join(record.origins)}]" if record.origins else ""
                    print(f"{record.key_id}  {record.scope:<7}  {rate}  {state:<18}  {record.name}{sites}")
            elif not await keys.revoke(args.key_id):
                print(f"no active key {args.key_id}", file=sys.stderr)
                return 1
            return 0
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_kit(settings: Settings, args: argparse.Namespace) -> int:
    """`journeys kit connect`: registers the engine's webhook receivers in Kit, prints the secret."""
    import httpx

    from cli.kit import connect_kit_webhooks
    from platforms.errors import PlatformError

    try:
        connected = asyncio.run(
            connect_kit_webhooks(
                settings, public_url=args.public_url, ingest_key=args.ingest_key, links=args.link or []
            )
        )
    except (PlatformError, httpx.HTTPError) as exc:
        print(f"journeys kit connect: Kit refused or could not be reached: {exc}", file=sys.stderr)
        return 1
    if args.secret_only:
        # For `dev`, which reads the secret from the last line.
        print(connected.secret)
        return 0
    action = "rotated the secret of" if connected.rotated else "created"
    print(f"{action} Kit webhook endpoint {connected.endpoint_id}; its signing secret, shown once:")
    print(connected.secret)
    print("set it as JOURNEYS_KIT_WEBHOOK_SECRET on every API process (a rotation retires the old one)")
    if connected.link_webhook_ids:
        ids = ", ".join(str(i) for i in connected.link_webhook_ids)
        print(f"link click webhooks: {ids}")
    return 0


def cmd_hubspot(settings: Settings, args: argparse.Namespace) -> int:
    """`journeys hubspot connect`: the app's webhooks to this engine (target URL, subscriptions)."""
    import httpx

    from cli.hubspot import connect_hubspot_webhooks
    from platforms.errors import PlatformError

    app_id = args.app_id or settings.hubspot_app_id
    if not app_id:
        print("journeys hubspot connect: give --app-id or set JOURNEYS_HUBSPOT_APP_ID", file=sys.stderr)
        return 2
    try:
        ids = asyncio.run(
            connect_hubspot_webhooks(
                settings,
                app_id=app_id,
                public_url=args.public_url,
                ingest_key=args.ingest_key,
                developer_token=args.developer_token,
            )
        )
    except (PlatformError, httpx.HTTPError) as exc:
        print(f"journeys hubspot connect: HubSpot refused or could not be reached: {exc}", file=sys.stderr)
        return 1
    print(f"app {app_id}: webhooks go to this engine; subscriptions {', '.join(str(i) for i in ids)}")
    print("the API verifies them with the app's client secret: JOURNEYS_HUBSPOT_CLIENT_SECRET")
    return 0


def cmd_new(root: Path, name: str) -> int:
    from cli.scaffold import ScaffoldError, next_step, scaffold

    try:
        written = scaffold(root.resolve(), name)
    except ScaffoldError as exc:
        print(f"journeys new: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(root.resolve())}")
    print(next_step(name))
    return 0


def cmd_sequences(settings: Settings, args: argparse.Namespace) -> int:
    """Moves the leads enrolled in a sequence onto its latest version: each lead's journey cancels
    the enrollment in flight and starts the sequence over on the new version."""
    from domain.ids import lead_workflow_id
    from domain.nurture import parse_nurture_workflow_id
    from domain.qualify import ENROLL_SIGNAL, EnrollRequest
    from runtime.temporal import connect

    async def run() -> int:
        client = await connect(settings)
        leads: set[str] = set()
        async for found in client.list_workflows("Journey = 'nurture' AND ExecutionStatus = 'Running'"):
            parsed = parse_nurture_workflow_id(found.id)
            if parsed is not None and parsed[1] == args.sequence_id:
                leads.add(parsed[0])
        for lead_id in sorted(leads):
            if not args.dry_run:
                await client.get_workflow_handle(lead_workflow_id(lead_id)).signal(
                    ENROLL_SIGNAL, EnrollRequest(sequence_id=args.sequence_id, restart=True)
                )
            print(f"{'would move' if args.dry_run else 'moved'} lead {lead_id}")
        print(
            f"{len(leads)} leads {'to move' if args.dry_run else 'moved'} onto the latest {args.sequence_id}"
        )
        return 0

    return asyncio.run(run())


# A sample lead's score when only its band is given.
BAND_SCORES = {"cold": 10, "warm": 45, "hot": 80}


def _frequency_cap(text: str | None, settings: Settings) -> Any:
    from domain.sequences import FrequencyCap, parse_duration

    if text is None:
        return FrequencyCap(
            max_sends=settings.email_cap_max_sends, per=timedelta(days=settings.email_cap_window_days)
        )
    count, slash, per = text.partition("/")
    if not slash or not count.strip().isdigit():
        raise ValueError(f"--cap {text!r}: write SENDS/PERIOD, e.g. 3/7d")
    return FrequencyCap(max_sends=int(count), per=parse_duration(per))


def _simulation_table(result: Any) -> str:
    """The timeline as columns: local time, day, step, what, why; then one summary line."""
    context = result.context
    facts = [
        f"stage {context.stage}",
        f"score {context.score} ({context.score_band})",
        f"engagement {context.engagement}",
        *(
            f"{label} {value}"
            for label, value in (
                ("topic", context.preferred_topic),
                ("source", context.lead_source),
                ("country", context.country),
                ("clicks", context.email_clicks or None),
            )
            if value
        ),
    ]
    header = (f"local time ({result.timezone})", "day", "step", "what", "why")
    rows = [
        (f"{item.at_local:%a %Y-%m-%d %H:%M}", f"{item.day:.1f}", item.step_id or "-", item.kind, item.detail)
        for item in result.timeline
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(4)]
    lines = [
        f"{result.name} ({result.sequence_id} v{result.version}) for lead {result.lead_id}: "
        + ", ".join(facts),
        "",
    ]
    for row in [header, *rows]:
        lines.append(
            "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[4]])
        )
        if row is header:
            lines.append("  ".join("-" * width for width in [*widths, 3]))
    reason = f" ({result.exit_reason})" if result.exit_reason else ""
    if result.status in ("active", "paused"):
        reason = " when the horizon came"
    lines += [
        "",
        f"{result.status}{reason} after {result.simulated_days:g} simulated days: "
        f"{result.sends} emails sent; simulated in {result.wall_seconds:.2f} s",
    ]
    return "\n".join(lines)


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from pydantic import ValidationError

    from domain.sequences import LeadContext, load_sequences, parse_duration
    from workers.simulate import PREVIEW_LEAD_ID, SimulatedEvent, SimulationError, parse_event, simulate

    def fail(message: str) -> int:
        print(f"journeys simulate: {message}", file=sys.stderr)
        return 2

    try:
        sequences = load_sequences(args.sequences_dir or settings.sequences_dir)
    except ValueError as exc:
        return fail(str(exc))
    sequence = sequences.get(args.sequence_id)
    if sequence is None:
        known = ", ".join(sorted(sequences)) or "none"
        return fail(f"no sequence {args.sequence_id!r}; known: {known}")
    try:
        context = LeadContext(
            stage=args.stage,
            score=args.score if args.score is not None else BAND_SCORES[args.band],
            score_band=args.band,
            engagement=args.engagement,
            preferred_topic=args.topic,
            email_clicks=args.email_clicks,
            lead_source=args.source,
            country=args.country,
            timezone=args.timezone,
        )
        events = [parse_event(spec) for spec in args.event]
        events += [SimulatedEvent.model_validate_json(text) for text in args.event_json]
        start = None
        if args.start:
            start = datetime.fromisoformat(args.start)
            if start.tzinfo is None:
                start = start.replace(tzinfo=ZoneInfo(args.timezone or "UTC"))
        result = asyncio.run(
            simulate(
                sequence,
                context,
                events=events,
                start=start,
                frequency_cap=_frequency_cap(args.cap, settings),
                already_sent=args.already_sent,
                horizon=parse_duration(args.horizon),
                lead_id=args.lead_id or PREVIEW_LEAD_ID,
            )
        )
    except ValidationError as exc:
        return fail("; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors()))
    except (ValueError, KeyError) as exc:
        return fail(str(exc))
    except SimulationError as exc:
        print(f"journeys simulate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        print(_simulation_table(result))
    return 0


def _simulate_parser(sub: Any) -> None:
    sim = sub.add_parser(
        "simulate",
        help="preview a nurture sequence for a sample lead: what would be sent when, and why",
        description="Runs the sequence on Temporal's time-skipping test server (weeks in seconds) with "
        "sends recorded, not made, and prints the timeline.",
    )
    sim.add_argument("sequence_id")
    sim.add_argument("--lead-id", help="the sample lead's id (it fixes A/B variants); default preview-lead")
    sim.add_argument("--timezone", help="the lead's IANA time zone, e.g. Europe/Berlin (default UTC)")
    sim.add_argument("--stage", default="lead")
    sim.add_argument("--band", choices=list(BAND_SCORES), default="warm", help="score band (default warm)")
    sim.add_argument("--score", type=int, help="default: a typical score of the band")
    sim.add_argument("--engagement", choices=["low", "medium", "high"], default="low")
    sim.add_argument("--topic", help="preferred topic, e.g. security")
    sim.add_argument("--source", help="lead source, e.g. webinar")
    sim.add_argument("--country", help="two-letter country code")
    sim.add_argument("--email-clicks", type=int, default=0)
    sim.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="AFTER:WHAT",
        help="3d:email_clicked, 3d:email_clicked:NAME, or a context change such as 10d:stage=mql "
        "(repeatable)",
    )
    sim.add_argument(
        "--event-json",
        action="append",
        default=[],
        metavar="JSON",
        help='an event as JSON: {"after": "3d", "type": "email_clicked", "properties": {...}} (repeatable)',
    )
    sim.add_argument("--start", help="a later start than now (ISO 8601; without offset: in --timezone)")
    sim.add_argument("--already-sent", type=int, default=0, help="marketing emails already in the cap window")
    sim.add_argument("--cap", help="frequency cap SENDS/PERIOD, e.g. 3/7d (default: JOURNEYS_EMAIL_CAP_*)")
    sim.add_argument("--horizon", default="120d", help="stop after this long at most (default 120d)")
    sim.add_argument("--sequences-dir", type=Path, help="default: JOURNEYS_SEQUENCES_DIR")
    sim.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_doctor(settings: Settings, today: date | None = None) -> int:
    """What in this configuration will stop working: platform API versions retired or retiring
    within 60 days. Exit 1 when one is already retired (its calls fail now), 0 otherwise."""
    from domain.api_versions import CURRENT, near_sunset, sunset_of

    configured = {v.setting: str(getattr(settings, v.setting)) for v in CURRENT}
    warnings = near_sunset(configured, today or datetime.now(UTC).date())
    for warning in warnings:
        print(f"{'error' if warning.passed else 'warning'}: {warning}")
    named = {w.setting for w in warnings}
    for version in CURRENT:
        if version.setting not in named:
            sunset = sunset_of(version.platform, configured[version.setting])
            until = f"served until {sunset}" if sunset else "no end date published"
            print(f"ok: {version.platform} API version {configured[version.setting]} ({until})")
    return 1 if any(w.passed for w in warnings) else 0


COMMANDS = {
    "dev": (cmd_dev, "run everything on embedded defaults (Temporal, PostgreSQL, sandbox, worker, API)"),
    "worker": (cmd_worker, "run a worker"),
    "api": (cmd_api, "run the HTTP API"),
    "router": (cmd_router, "deliver recorded events to their journeys (the outbox dispatcher)"),
    "sandbox": (cmd_sandbox, "run the platform emulator"),
    "migrate": (cmd_migrate, "apply database migrations to JOURNEYS_DATABASE_URL"),
    "register-search-attributes": (
        cmd_register_search_attributes,
        "add our search attributes to a namespace",
    ),
    "doctor": (cmd_doctor, "warn of what in this configuration will stop working (API versions near sunset)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="journeys", description="Durable B2B journeys on Temporal.")
    parser.add_argument("--data-dir", type=Path, help="overrides JOURNEYS_DATA_DIR")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text)
    keys = sub.add_parser("keys", help="manage API keys (stored hashed in PostgreSQL)")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="create a key; prints it once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scope",
        choices=list(SCOPES),
        default="ingest",
        help="browser: a public key for web pages, bound to --origin; ingest: a server's; admin: all; "
        "reports:read, metrics:read, pii:export, pii:erase, roster:write: that one job only",
    )
    create.add_argument(
        "--rate", type=float, help="requests per second allowed (default 100; browser keys 1,000)"
    )
    create.add_argument(
        "--origin",
        action="append",
        help="browser keys: a site origin whose pages may use the key (repeat for each), "
        "e.g. https://www.example.com",
    )
    create.add_argument(
        "--rate-per-ip", type=float, help="browser keys: requests per second per client IP (default 10)"
    )
    key_actions.add_parser("list", help="list keys")
    revoke = key_actions.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    kit = sub.add_parser("kit", help="connect Kit's webhooks (unsubscribes, bounces, complaints, clicks)")
    kit_actions = kit.add_subparsers(dest="action", required=True)
    connect = kit_actions.add_parser(
        "connect", help="register this engine's receivers in the Kit account; prints the signing secret"
    )
    connect.add_argument(
        "--public-url",
        required=True,
        help="where Kit reaches this engine's API, e.g. https://journeys.example.com",
    )
    connect.add_argument(
        "--ingest-key", required=True, help="an ingest key for Kit to call with (journeys keys create)"
    )
    connect.add_argument(
        "--link",
        action="append",
        help="a link in your Kit emails whose clicks count (repeat for each): Kit reports clicks per link",
    )
    connect.add_argument("--secret-only", action="store_true", help="print only the signing secret")
    hubspot = sub.add_parser("hubspot", help="connect HubSpot's webhooks (contact and deal changes)")
    hubspot_actions = hubspot.add_subparsers(dest="action", required=True)
    hub_connect = hubspot_actions.add_parser(
        "connect", help="point the app's webhooks at this engine and subscribe to what it follows"
    )
    hub_connect.add_argument("--public-url", required=True, help="where HubSpot reaches this engine's API")
    hub_connect.add_argument("--ingest-key", required=True, help="an ingest key for HubSpot to call with")
    hub_connect.add_argument("--app-id", help="the HubSpot app (default JOURNEYS_HUBSPOT_APP_ID)")
    hub_connect.add_argument(
        "--developer-token", help="the app developer's credential for the Webhooks API (default: the token)"
    )
    new = sub.add_parser("new", help="make a new journey: models, workflow, activities, test, registration")
    new.add_argument("name", help="snake_case, e.g. webinar_followup")
    new.add_argument("--root", type=Path, default=Path.cwd(), help="the project's root (default: here)")
    _simulate_parser(sub)
    sequences = sub.add_parser("sequences", help="act on the leads enrolled in a sequence")
    sequence_actions = sequences.add_subparsers(dest="action", required=True)
    move = sequence_actions.add_parser("move", help="move enrolled leads onto the sequence's latest version")
    move.add_argument("sequence_id")
    move.add_argument("--dry-run", action="store_true", help="list the leads, change nothing")
    args = parser.parse_args(argv)
    if args.command == "new":
        return cmd_new(args.root, args.name)
    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    if args.command == "simulate":
        # No log setup: logs go to stdout, which carries the table or the JSON.
        return cmd_simulate(settings, args)
    _logging(settings)
    if args.command == "keys":
        return cmd_keys(settings, args)
    if args.command == "sequences":
        return cmd_sequences(settings, args)
    if args.command == "kit":
        return cmd_kit(settings, args)
    if args.command == "hubspot":
        return cmd_hubspot(settings, args)
    handler, _ = COMMANDS[args.command]
    return handler(settings)


# Commands that start a Temporal runtime in this process and end with it: its core threads may
# still call into Python while the interpreter finalizes (an abort in PyGILState_Release, seen
# under load), so once their output is flushed they leave without finalizing.
IN_PROCESS_RUNTIME = {"simulate"}

if __name__ == "__main__":
    code = main()
    if IN_PROCESS_RUNTIME & set(sys.argv[1:2]):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
    sys.exit(code)
