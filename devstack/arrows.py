"""The rooms and arrows of the code, read from its imports, and who signals whom, read from the
workflows' handlers and the calls that reach them.

    .venv/bin/python -m devstack.arrows            # print the generated part of docs/architecture.md
    .venv/bin/python -m devstack.arrows --write    # rewrite it in place
    .venv/bin/python -m devstack.arrows --check    # exit 1 on a backwards arrow, naming it

`ALLOWED` is the rule: which rooms of ours each room may import. `tests/unit/test_architecture.py`
holds every module to it (and to `FORBIDDEN_LIBRARIES`), and requires the doc's generated part to be
what this module prints, so the page cannot drift from the code.

Everything here is static (ast over the source files): nothing is imported, so a module that does
not import yet (someone's work in progress) is still read, and the check needs no database.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- arrows:begin (python -m devstack.arrows --write) -->", "<!-- arrows:end -->"

# In dependency order: a room is listed after every room it may import (but `bench` and `tests`).
ROOMS: tuple[str, ...] = (
    "domain",
    "sandbox",
    "platforms",
    "store",
    "runtime",
    "workflows",
    "activities",
    "routing",
    "api",
    "workers",
    "devstack",
    "cli",
    "bench",
    "tests",
)
_PRODUCT = frozenset(ROOMS) - {"tests", "bench"}

ALLOWED: dict[str, frozenset[str]] = {
    # Pure models and rules: safe inside a workflow, so nothing of ours that does I/O.
    "domain": frozenset(),
    # It stands for the outside world: it shares no code with what it emulates.
    "sandbox": frozenset(),
    "platforms": frozenset({"domain"}),
    "store": frozenset({"domain"}),
    # Settings, the one Temporal client factory, telemetry, Temporal's availability.
    "runtime": frozenset({"domain"}),
    # Deterministic: activities are called by name, never imported.
    "workflows": frozenset({"domain"}),
    "activities": frozenset({"domain", "platforms", "store"}),
    "routing": frozenset({"domain", "runtime", "store"}),
    # The API starts and signals journeys by type name; it reads Meta's and LinkedIn's lead ads
    # itself (a webhook names a lead the API must fetch before it answers).
    "api": frozenset({"domain", "store", "runtime", "platforms"}),
    "workers": frozenset({"domain", "workflows", "activities", "platforms", "store", "runtime"}),
    "devstack": frozenset({"domain", "runtime", "store"}),
    "cli": _PRODUCT - {"cli"},
    # Benchmarks drive the stack as the e2e tests do, with the tests' shared helpers; the chaos
    # test runs the benchmarks' mixed workload (`bench/workload.py`): the one pair of rooms that
    # import each other.
    "bench": frozenset({"devstack", "domain", "runtime", "store", "tests"}),
    "tests": frozenset(ROOMS) - {"tests"},
}

# Third-party libraries that would put I/O (or a platform's transport) where it must not be.
_IO = frozenset(
    {"httpx", "requests", "aiohttp", "sqlalchemy", "asyncpg", "alembic", "fastapi", "starlette", "uvicorn"}
)
FORBIDDEN_LIBRARIES: dict[str, frozenset[str]] = {
    "domain": _IO | {"opentelemetry", "prometheus_client", "psutil"},
    "workflows": _IO | {"opentelemetry", "prometheus_client", "psutil"},
    # A platform client knows HTTP and the platform, not Temporal or our database.
    "platforms": frozenset({"temporalio", "sqlalchemy", "asyncpg", "alembic", "fastapi", "starlette"}),
    "store": frozenset({"httpx", "requests", "aiohttp", "fastapi", "starlette"}),
}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the project root
    line: int
    module: str  # the importing module
    target: str  # what it imports, as written (a module, or module.name)

    @property
    def room(self) -> str:
        return self.module.split(".", 1)[0]

    @property
    def target_room(self) -> str | None:
        top = self.target.split(".", 1)[0]
        return top if top in ROOMS else None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module} imports {self.target}"


def source_files(root: Path = ROOT) -> Iterator[Path]:
    for room in ROOMS:
        for path in sorted((root / room).rglob("*.py")):
            if "__pycache__" not in path.parts:
                yield path


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path = ROOT) -> list[Import]:
    """Every import in the file, also those inside functions and `if TYPE_CHECKING:` blocks: a
    type-only import is still an arrow between rooms."""
    module = module_name(path, root)
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    relative = path.relative_to(root).as_posix()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(relative, node.lineno, module, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.module, node.level)
            if node.module is None:  # `from . import x`: each name is a module
                found += [
                    Import(relative, node.lineno, module, ".".join(filter(None, [base, a.name])))
                    for a in node.names
                ]
            else:
                found.append(Import(relative, node.lineno, module, base))
    return found


def _absolute(module: str, is_package: bool, name: str | None, level: int) -> str:
    if level == 0:
        return name or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, name] if name else base)


def all_imports(root: Path = ROOT) -> list[Import]:
    return [found for path in source_files(root) for found in imports_of(path, root)]


def backwards(imports: Iterable[Import]) -> list[str]:
    """Each import that breaks a rule, named with its file, line, module and target."""
    broken: list[str] = []
    for found in imports:
        target_room = found.target_room
        if target_room is not None and target_room != found.room:
            allowed = ALLOWED[found.room]
            if target_room not in allowed:
                may = ", ".join(sorted(allowed)) or "nothing of ours"
                broken.append(f"{found}: {found.room}/ may not import {target_room}/ (it may import {may})")
        library = found.target.split(".", 1)[0]
        if library in FORBIDDEN_LIBRARIES.get(found.room, frozenset()):
            broken.append(f"{found}: {found.room}/ may not import {library}")
    return broken


def room_graph(imports: Iterable[Import]) -> dict[str, dict[str, set[str]]]:
    """room -> room it imports -> the modules of the first that do."""
    graph: dict[str, dict[str, set[str]]] = {room: {} for room in ROOMS}
    for found in imports:
        target_room = found.target_room
        if target_room is not None and target_room != found.room:
            graph[found.room].setdefault(target_room, set()).add(found.module)
    return graph


# --- who signals whom -------------------------------------------------------------------------

_SIGNAL_CALLS = {"signal"}
_UPDATE_CALLS = {"execute_update", "start_update"}
_START_CALLS = {"start_workflow", "execute_workflow"}
_CHILD_CALLS = {"start_child_workflow", "execute_child_workflow"}
# The store writes outbox rows naming a lead's signal (`store.ingest.signal_message`); the router
# delivers each as a signal-with-start of the lead's workflow.
_OUTBOX_WRITERS = {"signal_message"}
_ROUTER = "routing/dispatcher.py"
_SCHEDULE = "ScheduleActionStartWorkflow"
OPS = "ops: temporal CLI"


@dataclass(frozen=True, order=True)
class Message:
    sender: str  # a workflow type, or the module that sends
    receiver: str  # a workflow type
    kind: str  # signal, update, signal-with-start, start, child, schedule
    name: str = ""  # the signal's or update's name as Temporal sees it; "" for a start
    via: str = ""  # the activity that sends it for the workflow (a workflow cannot start others)


def _constants(root: Path) -> dict[str, str]:
    """Module-level string constants of `domain/`: signal, update and workflow type names."""
    values: dict[str, str] = {}
    for path in sorted((root / "domain").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.isupper():
                        values[target.id] = node.value.value
    return values


def _decorator(decorator: ast.expr) -> tuple[str, ast.expr | None] | None:
    """`@workflow.signal(name=X)` -> ("signal", X)."""
    if not isinstance(decorator, ast.Call) or not isinstance(decorator.func, ast.Attribute):
        return None
    names = [k.value for k in decorator.keywords if k.arg == "name"]
    return decorator.func.attr, names[0] if names else None


def _methods(node: ast.ClassDef) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {m.name: m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)}


@dataclass
class _Workflows:
    values: dict[str, str]  # domain constant -> its string
    type_of_class: dict[str, str]  # workflow class name -> its workflow type
    types_of_module: dict[str, list[str]]  # workflows module -> the workflow types it defines
    handlers: dict[str, set[str]]  # signal/update constant -> workflow types handling it

    def type_named(self, name: str | None) -> str | None:
        """A workflow type from a constant (`NURTURE_WORKFLOW_TYPE`) or a class (`NurtureWorkflow`)."""
        if name is None:
            return None
        return self.type_of_class.get(name) or self.values.get(name)


def _workflows(root: Path) -> _Workflows:
    values = _constants(root)
    found = _Workflows(values, {}, defaultdict(list), defaultdict(set))
    for path in sorted((root / "workflows").glob("*.py")):
        module = module_name(path, root)
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            defn = [d for d in map(_decorator, node.decorator_list) if d and d[0] == "defn"]
            if not defn or not isinstance(defn[0][1], ast.Name) or defn[0][1].id not in values:
                continue
            workflow_type = values[defn[0][1].id]
            found.type_of_class[node.name] = workflow_type
            found.types_of_module[module].append(workflow_type)
            for method in _methods(node).values():
                for kind in map(_decorator, method.decorator_list):
                    name = kind[1] if kind and kind[0] in ("signal", "update") else None
                    if isinstance(name, ast.Name) and name.id in values:
                        found.handlers[name.id].add(workflow_type)
    return found


def _workflow_senders(root: Path, workflows: _Workflows) -> dict[str, list[str]]:
    """Whose messages a `workflows/` module sends: its own workflows', or, for a helper module
    (no workflow of its own), those of the workflows that import it."""
    importers: dict[str, set[str]] = defaultdict(set)
    for path in sorted((root / "workflows").glob("*.py")):
        for found in imports_of(path, root):
            if found.target.startswith("workflows."):
                importers[found.target].add(found.module)
    senders: dict[str, list[str]] = {}
    for path in sorted((root / "workflows").glob("*.py")):
        module = module_name(path, root)
        owners, seen, todo = set(workflows.types_of_module.get(module, [])), {module}, [module]
        while not owners and todo:
            for importer in importers.get(todo.pop(), set()) - seen:
                seen.add(importer)
                owners |= set(workflows.types_of_module.get(importer, []))
                todo.append(importer)
        senders[module] = sorted(owners)
    return senders


def _first_name(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Name):
        return call.args[0].id
    if call.args and isinstance(call.args[0], ast.Attribute) and isinstance(call.args[0].value, ast.Name):
        return call.args[0].value.id  # `NurtureWorkflow.run`
    return None


def _keyword(call: ast.Call, name: str) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Name):
            return keyword.value.id
    return None


def _called(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _sends(tree: ast.AST, workflows: _Workflows) -> set[tuple[str, str, str]]:
    """(receiver type, kind, message name) of each call in `tree` that names its target by a
    constant; a target named by a variable is not seen (the API's journey routes: `_api_journeys`)."""
    sent: set[tuple[str, str, str]] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called, first = _called(node), _first_name(node)
        if called in _SIGNAL_CALLS | _UPDATE_CALLS and first in workflows.handlers:
            kind = "signal" if called in _SIGNAL_CALLS else "update"
            sent |= {(t, kind, workflows.values[first]) for t in workflows.handlers[first]}
        elif called in _OUTBOX_WRITERS:
            signal = node.args[1] if len(node.args) > 1 else None
            if isinstance(signal, ast.Name) and signal.id in workflows.handlers:
                sent.add(("", "outbox", workflows.values[signal.id]))
        elif called in _START_CALLS | _CHILD_CALLS | {_SCHEDULE}:
            started = _start(node, called, workflows.type_named(first), workflows)
            if started is not None:
                sent.add(started)
    return sent


def _start(
    call: ast.Call, called: str, receiver: str | None, workflows: _Workflows
) -> tuple[str, str, str] | None:
    if receiver is None:
        return None
    if called in _CHILD_CALLS:
        return (receiver, "child", "")
    if called == _SCHEDULE:
        return (receiver, "schedule", "")
    if not any(keyword.arg == "start_signal" for keyword in call.keywords):
        return (receiver, "start", "")
    # A signal named by a variable (the router's, read from the outbox row) is drawn from the
    # rows' writers instead.
    signal = _keyword(call, "start_signal")
    return (receiver, "signal-with-start", workflows.values.get(signal or "", ""))


def _activity_sends(tree: ast.Module, workflows: _Workflows) -> dict[str, set[tuple[str, str, str]]]:
    """activity name -> what it sends, also through the helper methods it calls on `self`."""
    found: dict[str, set[tuple[str, str, str]]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        methods = _methods(node)
        calls = {
            name: {
                c.func.attr
                for c in ast.walk(method)
                if isinstance(c, ast.Call)
                and isinstance(c.func, ast.Attribute)
                and isinstance(c.func.value, ast.Name)
                and c.func.value.id == "self"
                and c.func.attr in methods
            }
            for name, method in methods.items()
        }
        for name, method in methods.items():
            defn = [d for d in map(_decorator, method.decorator_list) if d and d[0] == "defn"]
            if not defn or not isinstance(defn[0][1], ast.Constant):
                continue
            reached, todo = {name}, [name]
            while todo:
                for callee in calls[todo.pop()] - reached:
                    reached.add(callee)
                    todo.append(callee)
            sent = set().union(*(_sends(methods[m], workflows) for m in reached))
            if sent:
                found[str(defn[0][1].value)] = sent
    return found


def messages(root: Path = ROOT) -> list[Message]:
    """Every signal, update and start between the engine's parts: workflows' own calls, the
    activities that start or signal journeys for them, the router, the API, the CLI, the schedule."""
    workflows = _workflows(root)
    senders = _workflow_senders(root, workflows)
    found: set[Message] = set()
    by_activity: dict[str, set[tuple[str, str, str]]] = {}
    literals: dict[str, set[str]] = defaultdict(set)  # workflows module -> its string literals
    for path in source_files(root):
        module = module_name(path, root)
        room = module.split(".", 1)[0]
        if room in ("tests", "bench", "devstack"):
            continue
        tree = ast.parse(path.read_text())
        relative = path.relative_to(root).as_posix()
        if room == "activities":
            for activity, sent in _activity_sends(tree, workflows).items():
                by_activity[activity] = sent
            continue
        if room == "workflows":
            literals[module] = {
                n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            }
        for receiver, kind, name in _sends(tree, workflows):
            if kind == "outbox":  # the store's outbox rows: the router signals-with-start them
                found |= {
                    Message(_ROUTER, t, "signal-with-start", name) for t in _handlers_of(workflows, name)
                }
                continue
            for sender in senders.get(module, []) if room == "workflows" else [relative]:
                found.add(Message(sender, receiver, kind, name))
    for activity, sent in by_activity.items():
        callers = [t for module, strings in literals.items() if activity in strings for t in senders[module]]
        for receiver, kind, name in sent:
            for sender in callers or [f"activity {activity}"]:
                found.add(Message(sender, receiver, kind, name, via=activity))
    found |= _api_journeys(root, workflows.values)
    # Handled, and sent by no code of ours: ops send them (`temporal workflow signal`).
    received = {(m.receiver, m.name) for m in found}
    for constant, types in workflows.handlers.items():
        for receiver in types:
            if (receiver, workflows.values[constant]) not in received:
                kind = "update" if constant.endswith("_UPDATE") else "signal"
                found.add(Message(OPS, receiver, kind, workflows.values[constant]))
    return sorted(found)


def _handlers_of(workflows: _Workflows, name: str) -> set[str]:
    return {
        t
        for constant, types in workflows.handlers.items()
        if workflows.values[constant] == name
        for t in types
    }


def _api_journeys(root: Path, values: dict[str, str]) -> set[Message]:
    """`/v1/journeys/...` starts, signals and updates any journey by its spec (`domain/journeys.py`)."""
    sender = "api/routes/journeys.py"
    found: set[Message] = set()
    for node in ast.walk(ast.parse((root / "domain" / "journeys.py").read_text())):
        if not (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "JourneySpec"
        ):
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        type_name = keywords.get("workflow_type")
        if not isinstance(type_name, ast.Name) or type_name.id not in values:
            continue
        receiver = values[type_name.id]
        startable = keywords.get("startable")
        if not (isinstance(startable, ast.Constant) and startable.value is False):
            found.add(Message(sender, receiver, "start", ""))
        for kind, key in (("signal", "signals"), ("update", "updates")):
            table = keywords.get(key)
            if isinstance(table, ast.Dict):
                for name in table.keys:
                    if isinstance(name, ast.Name) and name.id in values:
                        found.add(Message(sender, receiver, kind, values[name.id]))
    return found


# --- the page -------------------------------------------------------------------------------


def _node(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def rooms_table(imports: list[Import]) -> str:
    graph = room_graph(imports)
    lines = ["| room | imports of ours (today) | may import (the rule) |", "|---|---|---|"]
    for room in ROOMS:
        today = ", ".join(f"`{target}`" for target in ROOMS if target in graph[room]) or "none"
        allowed = ", ".join(f"`{target}`" for target in ROOMS if target in ALLOWED[room]) or "nothing of ours"
        if room == "tests":
            allowed = "everything"
        lines.append(f"| `{room}/` | {today} | {allowed} |")
    return "\n".join(lines)


def rooms_graph(imports: list[Import]) -> str:
    graph = room_graph(imports)
    lines = ["```mermaid", "flowchart TD"]
    for room in ROOMS:
        if room == "tests":
            continue  # tests import every room: drawn, they would hide the rest
        for target in ROOMS:
            if target in graph[room]:
                lines.append(f"  {room} --> {target}")
    lines.append("```")
    return "\n".join(lines)


def signals_graph(found: list[Message]) -> str:
    # A signal-with-start followed by plain signals of the same name is one arrow.
    starts = {(m.sender, m.receiver, m.name, m.via) for m in found if m.kind == "signal-with-start"}
    edges: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for m in found:
        if m.kind == "signal" and (m.sender, m.receiver, m.name, m.via) in starts:
            continue
        edges[(m.sender, m.receiver, m.kind, m.via)].add(m.name)
    lines = ["```mermaid", "flowchart LR"]
    for node in sorted({m.sender for m in found} | {m.receiver for m in found}):
        shape = f'["{node}"]' if "/" in node or node == OPS else f'(["{node}"])'
        lines.append(f"  {_node(node)}{shape}")
    for (sender, receiver, kind, via), names in sorted(edges.items()):
        named = ", ".join(sorted(name for name in names if name))
        label = kind + (f": {named}" if named else "") + (f" (by activity {via})" if via else "")
        lines.append(f'  {_node(sender)} -- "{label}" --> {_node(receiver)}')
    lines.append("```")
    return "\n".join(lines)


def generated(root: Path = ROOT) -> str:
    imports = all_imports(root)
    return "\n\n".join(
        [
            BEGIN,
            rooms_table(imports),
            rooms_graph(imports),
            "Who signals whom (rounded: workflow types; boxed: the module that sends):",
            signals_graph(messages(root)),
            END,
        ]
    )


def page_with(text: str, block: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + block + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.arrows", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the generated part of {DOC.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 on a backwards arrow, naming it")
    args = parser.parse_args(argv)
    if args.check:
        broken = backwards(all_imports())
        print("\n".join(broken) or "every arrow goes the allowed way")
        return 1 if broken else 0
    block = generated()
    if args.write:
        DOC.write_text(page_with(DOC.read_text(), block))
        print(f"wrote the rooms, arrows and signals into {DOC.relative_to(ROOT)}")
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
