"""The arrows between rooms go one way, and docs/architecture.md shows the ones the code has.

The rule is `devstack.arrows.ALLOWED` (which rooms of ours each room may import) and
`FORBIDDEN_LIBRARIES` (no I/O in `domain/` and `workflows/`, no Temporal or database in a platform
client, no HTTP in the store), read from every module's imports with `ast`, including imports
inside functions and type-only ones. A failure names the file, the line, the module and the import.
"""

import ast
from pathlib import Path

import pytest

from devstack.arrows import (
    ALLOWED,
    BEGIN,
    DOC,
    END,
    OPS,
    ROOMS,
    ROOT,
    all_imports,
    backwards,
    generated,
    imports_of,
    messages,
)


def test_every_import_goes_the_allowed_way():
    broken = backwards(all_imports())
    assert not broken, "arrows that run backwards:\n" + "\n".join(broken)


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("path", "source", "named"),
    [
        (
            "store/ratelimit.py",
            "from platforms.errors import RateLimitedError\n",
            "store/ratelimit.py:1: store.ratelimit imports platforms.errors: "
            "store/ may not import platforms/ (it may import domain)",
        ),
        (
            "api/routes/measure.py",
            "import json\n\n\ndef later():\n    from activities.reports import day_start\n",
            "api/routes/measure.py:5: api.routes.measure imports activities.reports: "
            "api/ may not import activities/",
        ),
        (
            "activities/journey.py",
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from workers.registry import Dependencies\n",
            "activities/journey.py:3: activities.journey imports workers.registry: "
            "activities/ may not import workers/",
        ),
        (
            "domain/rules.py",
            "from .. import store\n",
            "domain/rules.py:1: domain.rules imports store: domain/ may not import store/ "
            "(it may import nothing of ours)",
        ),
        ("workflows/lead.py", "import httpx\n", "workflows/lead.py:1: workflows.lead imports httpx: "),
        ("platforms/crm.py", "from temporalio import activity\n", "platforms/ may not import temporalio"),
    ],
    ids=["store-platforms", "lazy-import", "type-only-import", "relative-import", "library", "platform"],
)
def test_a_backwards_arrow_fails_naming_the_module_and_the_import(
    tmp_path: Path, path: str, source: str, named: str
):
    root = project(tmp_path, {path: source})
    broken = backwards(imports_of(root / path, root))
    assert len(broken) == 1 and named in broken[0], broken


def test_imports_of_a_room_of_its_own_and_of_allowed_rooms_pass(tmp_path: Path):
    root = project(
        tmp_path,
        {
            "workflows/journey.py": "from temporalio import workflow\n"
            "from domain.ids import lead_workflow_id\nfrom workflows.calls import call\n",
            "routing/router.py": "from runtime.availability import TemporalAvailability\n",
        },
    )
    found = [i for path in root.rglob("*.py") for i in imports_of(path, root)]
    assert len(found) == 4 and backwards(found) == []


def test_every_room_with_code_has_a_rule():
    rooms_with_code = {path.relative_to(ROOT).parts[0] for path in ROOT.glob("*/**/*.py")} - {
        ".venv",
        ".journeys",
        "build",
        "config",
    }
    assert rooms_with_code <= set(ROOMS), rooms_with_code - set(ROOMS)
    assert set(ALLOWED) == set(ROOMS)
    for room, allowed in ALLOWED.items():
        assert allowed <= set(ROOMS) - {room}, room
        # Rooms are listed in dependency order: no room may import one listed after it, so the
        # product's rooms form no cycle (only the benchmarks and the tests share code both ways).
        later = {other for other in allowed if ROOMS.index(other) > ROOMS.index(room)}
        assert later <= ({"tests"} if room == "bench" else set()), (room, later)


def test_the_architecture_page_shows_the_arrows_the_code_has():
    page = DOC.read_text()
    assert BEGIN in page and END in page
    shown = page[page.index(BEGIN) : page.index(END) + len(END)]
    assert shown == generated(), (
        "docs/architecture.md's rooms, arrows or signals differ from the code: "
        "run `.venv/bin/python -m devstack.arrows --write` and read the difference"
    )


def test_every_signal_and_update_a_workflow_handles_is_in_the_diagram():
    found = messages()
    drawn = {(m.receiver, m.kind, m.name) for m in found}
    # The lead's children and the messages between them, as docs/architecture.md describes them.
    for sender, receiver, kind, name in [
        ("routing/dispatcher.py", "LeadJourney", "signal-with-start", "events"),
        ("LeadJourney", "Nurture", "child", ""),
        ("LeadJourney", "Handoff", "child", ""),
        ("LeadJourney", "Nurture", "signal", "lead_context"),
        ("Nurture", "LeadJourney", "signal", "nurture_ended"),
        ("Handoff", "LeadJourney", "signal", "handoff_outcome"),
        ("LeadJourney", "AccountJourney", "signal-with-start", "contact_activity"),
        ("LeadJourney", "CustomerJourney", "signal-with-start", "customer_event"),
        ("api/routes/handoffs.py", "Handoff", "update", "accept"),
        ("api/routes/leads.py", "LeadJourney", "update", "change_stage"),
    ]:
        assert any((m.sender, m.receiver, m.kind, m.name) == (sender, receiver, kind, name) for m in found), (
            sender,
            receiver,
            kind,
            name,
        )
    handled = {("LeadJourney", "signal", "reload_rules"), ("Handoff", "update", "accept")}
    assert handled <= drawn
    assert [m.name for m in found if m.sender == OPS] == ["reload_rules"]


# What moved to the room it belongs in, and the module it moved out of: nothing imports it from
# there any more (no re-export left behind for old imports to lean on).
MOVED = {
    "domain.ratelimits": {
        "platforms.throttle": {"RateLimit", "DEFAULT_RATE_LIMITS", "limit_for"},
        "platforms.base": {"Throttle"},
    },
    "domain.ledger": {"platforms.base": {"LedgerEntry", "WriteLedger"}},
    "domain.reports": {"activities.reports": {"day_start"}},
    "runtime.availability": {"routing.dispatcher": {"TemporalAvailability", "SLOW_PROBES_FOR_DOWN"}},
}


def test_moved_definitions_are_imported_from_their_new_home():
    stale = []
    for path in [p for room in ROOMS for p in sorted((ROOT / room).rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.module is None:
                continue
            for home, old in MOVED.items():
                names = old.get(node.module, set()) & {alias.name for alias in node.names}
                if names:
                    stale.append(f"{path.relative_to(ROOT)}:{node.lineno}: {sorted(names)} from {home}")
    assert not stale, "import these from where they live now:\n" + "\n".join(stale)
    for home, old in MOVED.items():
        for source, names in old.items():
            # Defined at home, and only imported (for its own use) where it used to be.
            assert names <= defined_in(home), home
            assert not names & defined_in(source), source


def defined_in(module: str) -> set[str]:
    path = ROOT / f"{module.replace('.', '/')}.py"
    defined: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined |= {t.id for t in targets if isinstance(t, ast.Name)}
    return defined
