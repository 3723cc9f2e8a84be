"""A website for the browser tests: Segment's browser library from npm (pinned), a local HTTP
server on a loopback origin for the site's pages (standing in for Segment's CDN too), and
headless Chromium (Debian's `chromium`) to visit them.

Pages report their own results into the DOM (`data-*` attributes), which Chromium dumps when its
virtual-time budget is spent: nothing but the browser and the pages runs the scenario.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devstack.processes import free_port

ANALYTICS_NEXT_VERSION = "1.84.3"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
NPM_CACHE = PROJECT_ROOT / ".journeys" / "npm"
ARTIFACTS = PROJECT_ROOT / ".journeys" / "test-artifacts"


def analytics_next_bundles(cache: Path = NPM_CACHE) -> Path:
    """The library's browser bundles (`dist/umd`), installed from npm once into `cache`."""
    prefix = cache / f"analytics-next-{ANALYTICS_NEXT_VERSION}"
    bundles = prefix / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"
    if not (bundles / "index.js").exists():
        npm = shutil.which("npm")
        assert npm, "the website test installs @segment/analytics-next with npm (`apt-get install npm`)"
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                "--save-exact",
                f"@segment/analytics-next@{ANALYTICS_NEXT_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    installed = json.loads((bundles.parents[1] / "package.json").read_text())
    assert installed["version"] == ANALYTICS_NEXT_VERSION, installed["version"]
    return bundles


Page = Callable[[dict[str, list[str]]], str]


class Site:
    """Pages by path, files under prefixes, and JSON documents, served on 127.0.0.1 in a thread.
    `origin` is what the browser sends as `Origin` from these pages; `other_origin` names the same
    server as `localhost`, a different origin (for the wrong-origin case)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.other_origin = f"http://localhost:{self.port}"
        self.pages: dict[str, str] = {}
        self.files: dict[str, Path] = {}
        self.documents: dict[str, Any] = {}
        self.requests: list[str] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                site.requests.append(path)
                if path == "/hold":
                    # Holds the page's request for real seconds: Chromium's virtual time stands
                    # still while a request is in flight, so a page can wait as a person would.
                    time.sleep(min(float(query.removeprefix("ms=") or 0) / 1000, 10))
                    self._send(200, b"{}", "application/json")
                elif path in site.pages:
                    self._send(200, site.pages[path].encode(), "text/html; charset=utf-8")
                elif path in site.documents:
                    self._send(200, json.dumps(site.documents[path]).encode(), "application/json")
                else:
                    for prefix, folder in site.files.items():
                        name = path.removeprefix(prefix)
                        if path.startswith(prefix) and "/" not in name and (folder / name).is_file():
                            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
                            self._send(200, (folder / name).read_bytes(), kind)
                            return
                    self._send(404, b"not found", "text/plain")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        return Handler

    @contextmanager
    def serving(self) -> Iterator[Site]:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        thread = threading.Thread(target=server.serve_forever, name="test-site", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


def segment_cdn(site: Site, write_key: str, bundles: Path) -> None:
    """What Segment's CDN serves for a write key, served by the site instead (the test is offline):
    the project's settings, whose `Segment.io` entry the page then points at our API, and the
    library's lazily loaded chunks."""
    site.documents[f"/v1/projects/{write_key}/settings"] = {
        "integrations": {"Segment.io": {"apiKey": write_key, "apiHost": "api.segment.io/v1"}},
        "plan": {"track": {"__default": {"enabled": True}}, "identify": {"__default": {"enabled": True}}},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
    site.files["/analytics-next/bundles/"] = bundles


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, (
        "the website test needs Debian's chromium (`apt-get install chromium`; make test does it as root)"
    )
    return found


async def visit(
    url: str, *args: str, profile: Path | None = None, budget_ms: int = 15000, timeout: float = 90
) -> str:
    """The page's DOM once Chromium's virtual-time budget is spent. `profile` keeps cookies and
    local storage between visits (the library's anonymousId), as a returning visitor's browser does."""
    flags = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        f"--virtual-time-budget={budget_ms}",
    ]
    if profile is not None:
        flags.append(f"--user-data-dir={profile}")
    process = await asyncio.create_subprocess_exec(
        chromium(),
        *flags,
        *args,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, err.decode()[-2000:]
    return out.decode()
