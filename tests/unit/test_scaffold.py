"""`journeys new` makes a journey that passes its own tests, in a copy of the project."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            target = tmp_path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return tmp_path


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=240
    )


def test_a_new_journey_passes_its_own_tests(project: Path):
    made = run(["-m", "cli.main", "new", "demo_followup", "--root", str(project)], project)
    assert made.returncode == 0, made.stderr
    registry = (project / "workers" / "registry.py").read_text()
    assert "DemoFollowupWorkflow," in registry and "demo_followup_activities," in registry

    tested = run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/workflows/test_demo_followup.py"], project
    )
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert "2 passed" in tested.stdout

    registered = run(
        ["-c", "from workers.registry import WORKFLOWS; print([w.__name__ for w in WORKFLOWS])"], project
    )
    assert "DemoFollowupWorkflow" in registered.stdout, registered.stderr
    lint = subprocess.run(
        [
            str(Path(sys.executable).parent / "ruff"),
            "check",
            "domain",
            "workflows",
            "activities",
            "tests/workflows",
            "workers",
        ],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout

    again = run(["-m", "cli.main", "new", "demo_followup", "--root", str(project)], project)
    assert again.returncode == 2 and "already there" in again.stderr
    bad = run(["-m", "cli.main", "new", "Bad-Name", "--root", str(project)], project)
    assert bad.returncode == 2 and "snake_case" in bad.stderr
