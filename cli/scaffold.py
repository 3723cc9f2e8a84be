"""`journeys new NAME`: a working, tested journey to start from.

It writes the journey's models and names (`domain/`), its workflow (`workflows/`, calling its
activity through `workflows.calls.call` under a shared policy), its activity (`activities/`, over a
platform port, with the error names of `domain/errors.py`), its scenarios
(`tests/histories/scenarios/`, which its test plays and the history recorder saves) and its
time-skipping test (`tests/workflows/`). It registers the workflow and its activities on the
worker (`workers/registry.py`) and its spec for the API's `/v1/journeys` routes
(`domain/journeys.py`), each at its `journeys new:` markers, and redraws the generated part of
`docs/architecture.md`. What starts the journey is left to the developer: `next_step` says where.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9_]{2,40}$")
TEMPLATES = Path(__file__).resolve().parent / "templates"


class ScaffoldError(ValueError):
    pass


@dataclass(frozen=True)
class Names:
    name: str  # demo_followup

    @property
    def camel(self) -> str:  # DemoFollowup
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def upper(self) -> str:  # DEMO_FOLLOWUP
        return self.name.upper()

    @property
    def title(self) -> str:  # Demo followup
        return self.name.replace("_", " ").capitalize()

    def fill(self, text: str) -> str:
        return (
            text.replace("__CAMEL__", self.camel)
            .replace("__UPPER__", self.upper)
            .replace("__NAME__", self.name)
            .replace("__TITLE__", self.title)
        )


def render(template: str, name: str) -> str:
    return Names(name).fill((TEMPLATES / template).read_text())


# Where each registry gets its lines: {file: {marker: lines inserted above it}}.
def _registrations(names: Names) -> dict[str, dict[str, str]]:
    n = names
    return {
        "workers/registry.py": {
            "# journeys new: imports": (
                f"from activities.{n.name} import {n.camel}Activities\n"
                f"from workflows.{n.name} import {n.camel}Workflow\n"
            ),
            "# journeys new: factories": (
                f"def {n.name}_activities(deps: Dependencies) -> list[Callable[..., Any]]:\n"
                f'    """The {n.title.lower()} journey\'s activities (made by `journeys new`)."""\n'
                "    ports = build_connectors(\n"
                "        deps.settings, deps.http, throttle=deps.throttle, observer=deps.stats, "
                "ledger=deps.ledger\n"
                "    )\n"
                f"    return {n.camel}Activities(ports.crm, deps.stats).all()\n\n\n"
            ),
            "# journeys new: workflows": f"    {n.camel}Workflow,\n",
            "# journeys new: activities": f"    {n.name}_activities,\n",
        },
        "domain/journeys.py": {
            "# journeys new: imports": (
                f"from domain.{n.name} import (\n"
                f"    {n.upper}_REPLY_SIGNAL,\n"
                f"    {n.upper}_STATE_QUERY,\n"
                f"    {n.upper}_WORKFLOW_TYPE,\n"
                f"    {n.camel}Input,\n"
                f"    {n.camel}Reply,\n"
                f"    {n.camel}State,\n"
                f"    {n.name}_workflow_id_of,\n"
                ")\n"
            ),
            "# journeys new: journeys": (
                f'    "{n.name}": JourneySpec(\n'
                f"        workflow_type={n.upper}_WORKFLOW_TYPE,\n"
                f"        input_model={n.camel}Input,\n"
                f"        workflow_id={n.name}_workflow_id_of,\n"
                f"        signals={{{n.upper}_REPLY_SIGNAL: {n.camel}Reply}},\n"
                f"        state_query={n.upper}_STATE_QUERY,\n"
                f"        state_model={n.camel}State,\n"
                "    ),\n"
            ),
        },
    }


def scaffold(root: Path, name: str) -> list[Path]:
    if not NAME.match(name):
        raise ScaffoldError("NAME is snake_case: a-z, 0-9 and _, 3 to 41 characters, starting with a letter")
    names = Names(name)
    targets = {
        root / "domain" / f"{name}.py": "domain.py.txt",
        root / "workflows" / f"{name}.py": "workflow.py.txt",
        root / "activities" / f"{name}.py": "activities.py.txt",
        root / "tests" / "histories" / "scenarios" / f"{name}.py": "scenarios.py.txt",
        root / "tests" / "workflows" / f"test_{name}.py": "test_workflow.py.txt",
    }
    existing = [str(path.relative_to(root)) for path in targets if path.exists()]
    if existing:
        raise ScaffoldError(f"already there: {', '.join(existing)}")
    registries = {
        root / relative: _registered(root / relative, additions)
        for relative, additions in _registrations(names).items()
    }
    for path, template in targets.items():
        path.write_text(render(template, name))
    for path, text in registries.items():
        path.write_text(text)
    written = [*targets, *registries]
    _tidy(written)
    return [*written, *_redraw(root)]


def _redraw(root: Path) -> list[Path]:
    """The architecture page's generated part, with the new journey in who signals whom."""
    from devstack import arrows

    page = root / "docs" / "architecture.md"
    if not page.exists() or arrows.BEGIN not in page.read_text():
        return []
    page.write_text(arrows.page_with(page.read_text(), arrows.generated(root)))
    return [page]


def next_step(name: str) -> str:
    """What `journeys new` leaves to the developer: what starts the journey."""
    n = Names(name)
    return (
        f"next: .venv/bin/python -m pytest tests/workflows/test_{name}.py\n"
        f"one wiring step remains: start {n.camel}Journey where the product decides to.\n"
        f"  - from a lead's journey: an effect and the rule that emits it in domain/reactions.py, and\n"
        f"    one coroutine in workflows/lead_effects.py (named in LeadEffects.carry_out's table)\n"
        f"    that starts it as a child: id {name}_workflow_id(lead_id), ParentClosePolicy.ABANDON;\n"
        f'  - or from a service: POST /v1/journeys/{name} with {{"lead_id": ...}} (already registered).\n'
        f"Its scenarios' histories are saved by the history recorder (python -m tests.histories.record)."
    )


def _registered(path: Path, additions: dict[str, str]) -> str:
    """`path`'s text with each addition inserted above its marker line."""
    lines = path.read_text().splitlines(keepends=True)
    missing = [marker for marker in additions if not any(line.strip() == marker for line in lines)]
    if missing:
        raise ScaffoldError(f"{path.name} lacks the `journeys new:` markers {', '.join(missing)}")
    for marker, added in additions.items():
        at = next(i for i, line in enumerate(lines) if line.strip() == marker)
        lines[at:at] = added.splitlines(keepends=True)
    return "".join(lines)


def _tidy(paths: list[Path]) -> None:
    """Sorts the imports and formats the new code with the project's own ruff, when it is there."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        return
    files = [str(path) for path in paths]
    subprocess.run([ruff, "check", "--quiet", "--fix", "--select", "I", *files], check=False)
    subprocess.run([ruff, "format", "--quiet", *files], check=False)
