"""`journeys new` makes a journey that passes its own tests on the time-skipping server, in a copy
of the project: registered on the worker and for the API, its activity called through the shared
call helper and policy, its scenarios found by the history recorder, the architecture page redrawn.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The journey's own files, and the registries it is added to.
MADE = [
    "domain/demo_followup.py",
    "workflows/demo_followup.py",
    "activities/demo_followup.py",
    "tests/histories/scenarios/demo_followup.py",
    "tests/workflows/test_demo_followup.py",
]
REGISTRIES = ["workers/registry.py", "domain/journeys.py", "docs/architecture.md"]
# The Python files `journeys new` writes or edits: linted and type-checked.
CHANGED = [*MADE, *REGISTRIES[:2]]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as it is (committed or not), as a developer would run `journeys new` in it."""
    copy = tmp_path_factory.mktemp("project")
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=240
    )


# The type check of the made journey, started as soon as it is written: it is the slowest check
# (mypy reads every library the journey imports, from cold), so the other tests run beside it.
_TYPING: dict[str, subprocess.Popen[str]] = {}


@pytest.fixture(scope="module")
def made(project: Path) -> Iterator[subprocess.CompletedProcess[str]]:
    made = run(["-m", "cli.main", "new", "demo_followup", "--root", str(project)], project)
    assert made.returncode == 0, made.stderr
    _TYPING["mypy"] = subprocess.Popen(
        [str(BIN / "mypy"), "--follow-imports=silent", "--no-incremental", *CHANGED],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield made
    typing = _TYPING.pop("mypy", None)
    if typing is not None and typing.poll() is None:
        typing.kill()
        typing.communicate()


def test_it_writes_the_journey_and_says_the_one_step_left(made: subprocess.CompletedProcess[str]):
    assert [
        line.removeprefix("wrote ") for line in made.stdout.splitlines() if line.startswith("wrote ")
    ] == [
        *MADE,
        *REGISTRIES,
    ]
    assert "one wiring step remains: start DemoFollowupJourney" in made.stdout
    assert "domain/reactions.py" in made.stdout and "workflows/lead_effects.py" in made.stdout
    assert "POST /v1/journeys/demo_followup" in made.stdout


def test_the_journey_passes_its_own_tests_on_the_time_skipping_server(project: Path, made):
    tested = run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/workflows/test_demo_followup.py"], project
    )
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert "4 passed" in tested.stdout


def test_it_calls_its_activity_the_one_way_with_a_shared_policy(project: Path, made):
    workflow = (project / "workflows" / "demo_followup.py").read_text()
    assert "from workflows.calls import PLATFORM_WRITE, call" in workflow
    assert "policy=PLATFORM_WRITE" in workflow and "audit=self._state.record_failure" in workflow
    assert "execute_activity" not in workflow and "RetryPolicy" not in workflow
    assert '"PlatformRejected"' not in (project / "activities" / "demo_followup.py").read_text()


def test_it_is_registered_on_the_worker_for_the_api_and_for_the_recorder(project: Path, made):
    probe = """
import json
import httpx
from types import SimpleNamespace
from temporalio.activity import _Definition
from domain.journeys import BY_WORKFLOW_TYPE, JOURNEYS
from runtime.settings import Settings
from tests.histories.scenarios import discover
from workers.registry import ACTIVITY_FACTORIES, WORKFLOWS, Dependencies, all_activities

deps = Dependencies(settings=Settings(), http=httpx.AsyncClient(), store=SimpleNamespace(sessions=None))
spec = JOURNEYS["demo_followup"]
print(json.dumps({
    "workflows": [w.__name__ for w in WORKFLOWS],
    "activities": [_Definition.must_from_callable(a).name for a in all_activities(deps)],
    "factories": [f.__name__ for f in ACTIVITY_FACTORIES],
    "spec": [spec.workflow_type, sorted(spec.signals), spec.state_query, spec.startable],
    "by_type": "DemoFollowupJourney" in BY_WORKFLOW_TYPE,
    "scenarios": [s.name for s in discover()],
}))
"""
    found = run(["-c", probe], project)
    assert found.returncode == 0, found.stderr[-3000:]
    registered = json.loads(found.stdout.splitlines()[-1])
    assert "DemoFollowupWorkflow" in registered["workflows"]
    assert "demo_followup_activities" in registered["factories"]
    # Built over the CRM port the settings choose, beside every other journey's activities.
    assert "demo_followup.remind_owner" in registered["activities"]
    assert "crm.create_task" in registered["activities"]
    assert registered["spec"] == ["DemoFollowupJourney", ["reply"], "state", True] and registered["by_type"]
    assert {"demo_followup_no_reply", "demo_followup_reply_in_time"} <= set(registered["scenarios"])


def test_it_keeps_the_arrows_lint_and_types_clean_and_redraws_the_page(project: Path, made):
    page = (project / "docs" / "architecture.md").read_text()
    assert 'api_routes_journeys_py -- "signal: reply" --> DemoFollowupJourney' in page
    # The project's own rules hold with the journey in: the arrows and this page, and every activity
    # a workflow calls registered, called through `call`, failing with the shared error names.
    rules = ["tests/unit/test_architecture.py", "tests/unit/test_activity_registry.py"]
    checked = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", *rules], project)
    assert checked.returncode == 0, checked.stdout[-3000:]
    for check in (["check"], ["format", "--check"]):
        lint = subprocess.run(
            [str(BIN / "ruff"), *check, *CHANGED], cwd=project, capture_output=True, text=True
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
    typing = _TYPING.pop("mypy")
    typed, _ = typing.communicate(timeout=240)
    assert typing.returncode == 0, typed[-3000:]


def test_it_refuses_to_overwrite_and_refuses_a_bad_name(project: Path, made):
    again = run(["-m", "cli.main", "new", "demo_followup", "--root", str(project)], project)
    assert again.returncode == 2 and "already there" in again.stderr
    bad = run(["-m", "cli.main", "new", "Bad-Name", "--root", str(project)], project)
    assert bad.returncode == 2 and "snake_case" in bad.stderr


def test_a_registry_without_its_markers_is_refused_before_anything_is_written(tmp_path: Path):
    for name in ["workers/registry.py", "domain/journeys.py"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("# no markers here\n")
    refused = run(["-m", "cli.main", "new", "demo_followup", "--root", str(tmp_path)], ROOT)
    assert refused.returncode == 2 and "lacks the `journeys new:` markers" in refused.stderr
    assert not (tmp_path / "workflows").exists() and not (tmp_path / "domain" / "demo_followup.py").exists()
