"""`journeys new NAME`: a working, tested journey to start from.

It writes the journey's models (`domain/`), workflow (`workflows/`), activities (`activities/`)
and a time-skipping test (`tests/workflows/`), and registers the workflow and its activities in
`workers/registry.py` at the `journeys new:` markers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9_]{2,40}$")
TEMPLATES = Path(__file__).resolve().parent / "templates"
MARKERS = ("# journeys new: imports", "# journeys new: workflows", "# journeys new: activities")


class ScaffoldError(ValueError):
    pass


def render(template: str, name: str) -> str:
    camel = "".join(part.capitalize() for part in name.split("_"))
    return (
        (TEMPLATES / template)
        .read_text()
        .replace("__CAMEL__", camel)
        .replace("__NAME__", name)
        .replace("__TITLE__", name.replace("_", " ").capitalize())
    )


def scaffold(root: Path, name: str) -> list[Path]:
    if not NAME.match(name):
        raise ScaffoldError("NAME is snake_case: a-z, 0-9 and _, 3 to 41 characters, starting with a letter")
    targets = {
        root / "domain" / f"{name}.py": "domain.py.txt",
        root / "workflows" / f"{name}.py": "workflow.py.txt",
        root / "activities" / f"{name}.py": "activities.py.txt",
        root / "tests" / "workflows" / f"test_{name}.py": "test_workflow.py.txt",
    }
    existing = [str(path.relative_to(root)) for path in targets if path.exists()]
    if existing:
        raise ScaffoldError(f"already there: {', '.join(existing)}")
    registry = root / "workers" / "registry.py"
    text = registry.read_text()
    if not all(marker in text for marker in MARKERS):
        raise ScaffoldError(f"{registry} lacks the `journeys new:` markers")
    camel = "".join(part.capitalize() for part in name.split("_"))
    for path, template in targets.items():
        path.write_text(render(template, name))
    additions = {
        MARKERS[0]: f"from activities.{name} import activities as {name}_activities\n"
        f"from workflows.{name} import {camel}Workflow\n",
        MARKERS[1]: f"    {camel}Workflow,\n",
        MARKERS[2]: f"    {name}_activities,\n",
    }
    for marker, lines in additions.items():
        text = text.replace(marker, lines.rstrip("\n") + "\n" + _indent_of(text, marker) + marker, 1)
    registry.write_text(text)
    written = [*targets, registry]
    _tidy(written)
    return written


def _tidy(paths: list[Path]) -> None:
    """Sorts the imports and formats the new code with the project's own ruff, when it is there."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        return
    files = [str(path) for path in paths]
    subprocess.run([ruff, "check", "--quiet", "--fix", "--select", "I", *files], check=False)
    subprocess.run([ruff, "format", "--quiet", *files], check=False)


def _indent_of(text: str, marker: str) -> str:
    line = next(line for line in text.splitlines() if line.strip() == marker)
    return line[: len(line) - len(line.lstrip())]
