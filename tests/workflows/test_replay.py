"""Every saved history replays on today's code, and every patch has a saved history of each path.

A patch (`workflow.patched(id)`) splits a workflow type's runs in two: those recorded before it
took the old path (no marker in their history), those after it the new one (a `core_patch` marker
that carries the id). Both kinds may be in flight, so `tests/histories/` keeps, per workflow type
and patch, a history with the marker and one without, and every one of them must replay here. A
deprecated patch (`workflow.deprecate_patch(id)`) has only its new path left: it needs a history
with the marker, and the histories that predate it stand for runs none of which is left
(docs/writing-a-journey.md, "A patch's life"), so they are replayed but may fail, by a
non-determinism error only. Likewise, once a deprecated patch is removed, the histories with its
earlier marker.

The patches are found without running the workflows: the AST of `workflows/`, with the ids
resolved from their constants (across the package's imports, loops over tuples of them, and the
parameters of a helper that wraps `workflow.patched`). A helper module without a `@workflow.defn`
belongs to the workflow modules that import it.
"""

from __future__ import annotations

import ast
import importlib
import io
import itertools
import tokenize
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadConverter
from temporalio.worker import Replayer

from runtime.codec import new_key_spec
from runtime.settings import Settings
from runtime.temporal import data_converter
from workers.registry import WORKFLOWS

ROOT = Path(__file__).resolve().parents[2]
HISTORIES_DIR = ROOT / "tests" / "histories"
WORKFLOWS_DIR = ROOT / "workflows"

# How the SDK records `patched` and `deprecate_patch` in a history: a marker of this name whose
# details hold {"id": <patch id>, "deprecated": <bool>} under this key.
PATCH_MARKER = "core_patch"
PATCH_DETAILS = "patch-data"
# The SDK's patch calls, and whether each declares the patch deprecated.
PATCH_CALLS = {"temporalio.workflow.patched": False, "temporalio.workflow.deprecate_patch": True}
WORKFLOW_DEFN = "temporalio.workflow.defn"
# How deep a patch id is followed through names, imports and a helper's parameters.
MAX_DEPTH = 8


# --- The saved histories ------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedHistory:
    path: Path
    workflow_type: str
    # Patch id -> whether the marker was recorded by `deprecate_patch`.
    markers: dict[str, bool]

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def load(cls, path: Path) -> SavedHistory:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        started = history.events[0].workflow_execution_started_event_attributes
        markers: dict[str, bool] = {}
        for event in history.events:
            if not event.HasField("marker_recorded_event_attributes"):
                continue
            marker = event.marker_recorded_event_attributes
            if marker.marker_name != PATCH_MARKER:
                continue
            for payload in marker.details[PATCH_DETAILS].payloads:
                details = PayloadConverter.default.from_payload(payload)
                markers[details["id"]] = bool(details["deprecated"])
        return cls(path, started.workflow_type.name, markers)


# --- The patches in the code --------------------------------------------------------------------


@dataclass(frozen=True)
class PatchCall:
    patch_id: str
    workflow_types: tuple[str, ...]
    deprecated: bool
    where: str


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    # Module-level `NAME = value` (also inside a top-level `with`, `if` or `try`).
    bindings: dict[str, ast.expr] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    # Local name -> the dotted name it was imported as (`workflow` -> `temporalio.workflow`).
    imported: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imported[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.imported[top] = top
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(node)
                for alias in node.names:
                    self.imported[alias.asname or alias.name] = f"{base}.{alias.name}"
        self._collect(self.tree.body)

    def _absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        package = self.name.split(".")[: -node.level]
        return ".".join([*package, *([node.module] if node.module else [])])

    def _collect(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        self.bindings[target.id] = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                self.bindings[stmt.target.id] = stmt.value
            elif isinstance(stmt, ast.ClassDef):
                self.classes[stmt.name] = stmt
            elif isinstance(stmt, ast.With | ast.If | ast.Try):
                self._collect(stmt.body)
                if isinstance(stmt, ast.If | ast.Try):
                    self._collect(stmt.orelse)

    def qualified(self, node: ast.expr) -> str | None:
        """`workflow.patched` -> `temporalio.workflow.patched`, by this module's imports."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.insert(0, node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        head = self.imported.get(node.id, node.id)
        return ".".join([head, *parts])

    def line(self, node: ast.AST) -> str:
        return f"{self.path.name}:{getattr(node, 'lineno', '?')}"


class WorkflowSources:
    """A workflows package's modules, parsed, to find its patch calls without running them."""

    def __init__(self, package_dir: Path, package: str = "workflows") -> None:
        self.package = package
        self.modules: dict[str, _Module] = {}
        for path in sorted(package_dir.rglob("*.py")):
            parts = path.relative_to(package_dir).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            self.modules[name] = _Module(name, path, ast.parse(path.read_text(), str(path)))
        # What could not be resolved: a patch call that names no id we can tell, a nameless type.
        self.problems: list[str] = []
        self._types: dict[str, list[str]] = {}
        # Every patch call's place, resolved or not.
        self.sites: list[str] = []
        self.calls = list(self._patch_calls())

    # Which workflow types a call belongs to.

    def _defn(self, module: _Module, cls: ast.ClassDef) -> str | None:
        """The workflow type a class defines, if it is a `@workflow.defn`."""
        for decorator in cls.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            if module.qualified(call.func if call else decorator) != WORKFLOW_DEFN:
                continue
            name = next((k.value for k in call.keywords if k.arg == "name"), None) if call else None
            if name is None:
                return cls.name
            values = self._values(module, name, 0)
            if values is None or len(values) != 1:
                self.problems.append(f"{module.line(cls)}: cannot tell the workflow type of {cls.name}")
                return None
            return values[0]
        return None

    def _module_types(self, module: _Module) -> list[str]:
        if module.name not in self._types:
            classes = module.classes.values()
            self._types[module.name] = [t for c in classes if (t := self._defn(module, c)) is not None]
        return self._types[module.name]

    def _imports(self, module: _Module) -> set[str]:
        """The package's modules this one imports (`from workflows import x`, `from workflows.x import y`)."""
        found = set()
        for dotted in module.imported.values():
            while dotted:
                if dotted in self.modules and dotted != module.name:
                    found.add(dotted)
                    break
                dotted = dotted.rpartition(".")[0]
        return found

    def _owners(self, module: _Module) -> list[str]:
        """A helper module's workflow types: those of the workflow modules that import it, through
        other helpers (a module with a `@workflow.defn` owns its own calls)."""
        owners: set[str] = set()
        for other in self.modules.values():
            types = self._module_types(other)
            if not types or other is module:
                continue
            seen: set[str] = set()
            todo = [other.name]
            while todo:
                current = todo.pop()
                for imported in self._imports(self.modules[current]) - seen:
                    seen.add(imported)
                    if imported == module.name:
                        owners.update(types)
                    elif not self._module_types(self.modules[imported]):
                        todo.append(imported)
        return sorted(owners)

    def _types_of(self, module: _Module, node: ast.AST) -> tuple[str, ...]:
        parent = module.parents.get(node)
        while parent is not None:
            if isinstance(parent, ast.ClassDef) and (name := self._defn(module, parent)):
                return (name,)
            parent = module.parents.get(parent)
        return tuple(self._module_types(module) or self._owners(module))

    def _patch_calls(self) -> Iterator[PatchCall]:
        for module in self.modules.values():
            for node in ast.walk(module.tree):
                if not isinstance(node, ast.Call):
                    continue
                deprecated = PATCH_CALLS.get(module.qualified(node.func) or "")
                if deprecated is None:
                    continue
                where = f"{self.package.replace('.', '/')}/{module.line(node)}"
                self.sites.append(where)
                argument = node.args[0] if node.args else next((k.value for k in node.keywords), None)
                ids = self._values(module, argument, 0) if argument is not None else None
                if ids is not None and isinstance(argument, ast.Name):
                    ids = self._narrowed(module, node, argument.id, ids)
                types = self._types_of(module, node)
                if ids is None:
                    self.problems.append(f"{where}: cannot tell which patch id this call names")
                    continue
                if not types:
                    self.problems.append(f"{where}: belongs to no @workflow.defn class or its importers")
                    continue
                for patch_id in ids:
                    yield PatchCall(patch_id, types, deprecated, where)

    def _narrowed(self, module: _Module, call: ast.Call, name: str, ids: list[str]) -> list[str]:
        """The ids a call can get under the tests around it: `if patch in DEPRECATED:
        workflow.deprecate_patch(patch) else: workflow.patched(patch)` splits a helper's ids."""
        child: ast.AST = call
        parent = module.parents.get(call)
        while parent is not None:
            if isinstance(parent, ast.If | ast.IfExp):
                inside = child in (parent.body if isinstance(parent.body, list) else [parent.body])
                ids = self._split(module, parent.test, name, ids, inside)
            # An `if patch in X: ... return` before the call: the call is its `else`.
            for block in ("body", "orelse", "finalbody"):
                statements = getattr(parent, block, None)
                if isinstance(statements, list) and child in statements:
                    for earlier in statements[: statements.index(child)]:
                        if isinstance(earlier, ast.If) and not earlier.orelse and _leaves(earlier.body):
                            ids = self._split(module, earlier.test, name, ids, inside=False)
            if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef):
                return ids
            child, parent = parent, module.parents.get(parent)
        return ids

    def _split(self, module: _Module, test: ast.expr, name: str, ids: list[str], inside: bool) -> list[str]:
        compare = test if isinstance(test, ast.Compare) and len(test.ops) == 1 else None
        if (
            not compare
            or not _binds(compare.left, name)
            or not isinstance(compare.ops[0], ast.In | ast.NotIn)
        ):
            return ids
        among = self._values(module, compare.comparators[0], 0)
        if among is None:
            return ids
        keep = inside == isinstance(compare.ops[0], ast.In)
        return [i for i in ids if (i in among) == keep]

    # What an expression names: a list of strings, or None when it cannot be told.

    def _values(self, module: _Module, node: ast.expr, depth: int) -> list[str] | None:
        if depth > MAX_DEPTH:
            return None
        if isinstance(node, ast.Constant):
            return [node.value] if isinstance(node.value, str) else None
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return _joined(self._values(module, e, depth + 1) for e in node.elts)
        if isinstance(node, ast.Starred):
            return self._values(module, node.value, depth + 1)
        index = _int(node.slice) if isinstance(node, ast.Subscript) else None
        if isinstance(node, ast.Subscript) and type(index) is int:
            values = self._values(module, node.value, depth + 1)
            return [values[index]] if values is not None and -len(values) <= index < len(values) else None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            values = self._values(module, node.value, depth + 1)
            bounds = [_int(b) for b in (node.slice.lower, node.slice.upper, node.slice.step)]
            if values is None or any(b is False for b in bounds):
                return None
            return values[slice(*bounds)]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
            if node.func.id in {"tuple", "list", "set", "frozenset", "sorted"}:
                return self._values(module, node.args[0], depth + 1)
            return None
        if isinstance(node, ast.Name):
            return self._name(module, node, depth)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module.classes
        ):
            return self._class_attribute(module, module.classes[node.value.id], node.attr, depth)
        if isinstance(node, ast.Attribute):
            dotted = module.qualified(node)
            return self._dotted(dotted, depth) if dotted else None
        return None

    def _name(self, module: _Module, node: ast.Name, depth: int) -> list[str] | None:
        """A name bound where it is used (a loop, a comprehension, a parameter, an assignment in the
        function), else at module level."""
        child: ast.AST = node
        parent = module.parents.get(node)
        while parent is not None:
            if isinstance(parent, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
                for generator in parent.generators:
                    if _binds(generator.target, node.id):
                        return self._values(module, generator.iter, depth + 1)
            if isinstance(parent, ast.For | ast.AsyncFor) and child is not parent.iter:
                if _binds(parent.target, node.id):
                    return self._values(module, parent.iter, depth + 1)
            if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef):
                return self._in_function(module, parent, node.id, depth)
            child, parent = parent, module.parents.get(parent)
        return self._global(module, node.id, depth)

    def _in_function(
        self, module: _Module, function: ast.FunctionDef | ast.AsyncFunctionDef, name: str, depth: int
    ) -> list[str] | None:
        arguments = function.args
        positional = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
        if name in positional or name in [a.arg for a in arguments.kwonlyargs]:
            return self._parameter(module, function, name, depth)
        assigned = [
            n.value
            for n in ast.walk(function)
            if isinstance(n, ast.Assign) and any(_binds(t, name) for t in n.targets)
        ]
        if assigned:
            return _joined(self._values(module, value, depth + 1) for value in assigned)
        return self._global(module, name, depth)

    def _parameter(
        self, module: _Module, function: ast.FunctionDef | ast.AsyncFunctionDef, name: str, depth: int
    ) -> list[str] | None:
        """Every value the package's calls of this function pass for the parameter."""
        arguments = function.args
        positional = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
        method = isinstance(module.parents.get(function), ast.ClassDef) and positional[:1] in (
            ["self"],
            ["cls"],
        )
        found: list[list[str] | None] = []
        for caller in self.modules.values():
            for call in ast.walk(caller.tree):
                if not isinstance(call, ast.Call):
                    continue
                callee = call.func
                via_attribute = isinstance(callee, ast.Attribute) and callee.attr == function.name
                if not via_attribute and not (isinstance(callee, ast.Name) and callee.id == function.name):
                    continue
                if method and via_attribute and not _within(caller, call, module.parents[function]):
                    continue  # `self.<name>(...)` of another class
                index = (
                    positional.index(name) - (1 if method and via_attribute else 0)
                    if name in positional
                    else -1
                )
                if 0 <= index < len(call.args):
                    found.append(self._values(caller, call.args[index], depth + 1))
                else:
                    passed = next((k.value for k in call.keywords if k.arg == name), None)
                    found.append(self._values(caller, passed, depth + 1) if passed is not None else None)
        return _joined(found) if found else None

    def _global(self, module: _Module, name: str, depth: int) -> list[str] | None:
        if name in module.bindings:
            return self._values(module, module.bindings[name], depth + 1)
        if name in module.classes:
            return self._class_values(module, module.classes[name], depth)
        if name in module.imported:
            return self._dotted(module.imported[name], depth)
        return None

    def _class_values(self, module: _Module, cls: ast.ClassDef, depth: int) -> list[str] | None:
        """A class of constants (a `StrEnum` of patch ids), iterated."""
        values = [
            self._values(module, stmt.value, depth + 1)
            for stmt in cls.body
            if isinstance(stmt, ast.Assign) and not all(_dunder(t) for t in stmt.targets)
        ]
        return _joined(values) if values else None

    def _class_attribute(self, module: _Module, cls: ast.ClassDef, name: str, depth: int) -> list[str] | None:
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign) and any(_binds(t, name) for t in stmt.targets):
                return self._values(module, stmt.value, depth + 1)
        return None

    def _dotted(self, dotted: str, depth: int) -> list[str] | None:
        """`workflows.lead_patches.QUALIFY_PATCH`, `patches.Lead.QUALIFY`, `domain.x.CONSTANT`."""
        head, rest = dotted, list[str]()
        while head and head not in self.modules:
            head, _, last = head.rpartition(".")
            rest.insert(0, last)
        if head:
            module = self.modules[head]
            if len(rest) == 1:
                return self._global(module, rest[0], depth + 1)
            if len(rest) == 2 and rest[0] in module.classes:
                return self._class_attribute(module, module.classes[rest[0]], rest[1], depth)
            return None
        return _python_values(dotted)


def _within(module: _Module, node: ast.AST, cls: ast.AST) -> bool:
    """Whether a `self.x(...)` call is inside the class (any other receiver may be any class)."""
    callee = node.func if isinstance(node, ast.Call) else None
    receiver = callee.value if isinstance(callee, ast.Attribute) else None
    if not (isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")):
        return True
    parent = module.parents.get(node)
    while parent is not None and parent is not cls:
        parent = module.parents.get(parent)
    return parent is cls


def _leaves(body: list[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], ast.Return | ast.Raise | ast.Continue)


def _binds(target: ast.expr, name: str) -> bool:
    return isinstance(target, ast.Name) and target.id == name


def _dunder(target: ast.expr) -> bool:
    return isinstance(target, ast.Name) and target.id.startswith("__")


def _int(node: ast.expr | None) -> int | bool | None:
    """A slice bound: an int, None when left out, False when it is not a literal."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
    ):
        return -node.operand.value if isinstance(node.operand.value, int) else False
    return False


def _joined(parts: Iterable[list[str] | None]) -> list[str] | None:
    joined: list[str] = []
    for part in parts:
        if part is None:
            return None
        joined += [value for value in part if value not in joined]
    return joined


def _python_values(dotted: str) -> list[str] | None:
    """A constant outside the package (`domain.ids.LEAD_WORKFLOW_TYPE`), read by importing it."""
    module_name, _, attribute = dotted.rpartition(".")
    try:
        value: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        return None
    items = list(value) if isinstance(value, tuple | list | set | frozenset | dict) else [value]
    if isinstance(value, type) and issubclass(value, Enum):
        items = list(value)
    strings = [item.value if isinstance(item, Enum) else item for item in items]
    return strings if all(isinstance(s, str) for s in strings) else None


def code_patch_calls(sources: WorkflowSources) -> int:
    """How many `patched(` / `deprecate_patch(` calls the package's code holds, by its tokens (not
    its comments or strings): the AST must have found each one."""
    count = 0
    for module in sources.modules.values():
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(module.path.read_text()).readline)
            if t.type in (tokenize.NAME, tokenize.OP)
        ]
        for token, following in itertools.pairwise(tokens):
            if token.string in ("patched", "deprecate_patch") and following.string == "(":
                count += 1
    return count


# --- What each patch needs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Patch:
    workflow_type: str
    patch_id: str
    # Only `deprecate_patch` calls are left: the old path is gone.
    deprecated: bool
    where: tuple[str, ...]


def patches(calls: Iterable[PatchCall]) -> dict[tuple[str, str], Patch]:
    grouped: dict[tuple[str, str], list[PatchCall]] = defaultdict(list)
    for call in calls:
        for workflow_type in call.workflow_types:
            grouped[workflow_type, call.patch_id].append(call)
    return {
        key: Patch(key[0], key[1], all(c.deprecated for c in found), tuple(sorted({c.where for c in found})))
        for key, found in sorted(grouped.items())
    }


def retired_by(
    saved: SavedHistory, known: dict[tuple[str, str], Patch], histories: list[SavedHistory]
) -> list[str]:
    """The patches whose old path this history took although the policy has ended every run on it:
    a deprecated patch it has no marker of, or a removed one (no call left; its deprecation stage
    recorded in a history) whose marker it has from before the deprecation."""
    kind = saved.workflow_type
    predates = [
        p.patch_id
        for p in known.values()
        if p.workflow_type == kind and p.deprecated and p.patch_id not in saved.markers
    ]
    outlived = [
        patch_id
        for patch_id, deprecated in saved.markers.items()
        if not deprecated
        and (kind, patch_id) not in known
        and any(h.workflow_type == kind and h.markers.get(patch_id) is True for h in histories)
    ]
    return sorted(predates + outlived)


def missing_paths(known: dict[tuple[str, str], Patch], histories: list[SavedHistory]) -> list[str]:
    """What `tests/histories/` lacks, one line per workflow type and patch."""
    missing = []
    for (kind, patch_id), patch in known.items():
        of_type = [h for h in histories if h.workflow_type == kind]
        marked = [h for h in of_type if patch_id in h.markers]
        replayed = [h for h in marked if not retired_by(h, known, histories)]
        unmarked = [h for h in of_type if patch_id not in h.markers and not retired_by(h, known, histories)]
        at = ", ".join(patch.where)
        if not replayed:
            missing.append(
                f"{kind} x {patch_id} ({at}): no saved history WITH its marker that must replay; "
                "record one on today's code with a scenario that reaches the patch"
            )
        if not patch.deprecated and not unmarked:
            missing.append(
                f"{kind} x {patch_id} ({at}): no saved history WITHOUT its marker that must replay; record "
                f"one from the code before the patch (the parent of `git log --reverse -S'\"{patch_id}\"' -- "
                "workflows/`), or, if its old runs are gone too, deprecate it (the oldest patches go first)"
            )
    for saved in histories:
        for patch_id in saved.markers:
            kind = saved.workflow_type
            removed = (kind, patch_id) not in known
            staged = any(h.workflow_type == kind and h.markers.get(patch_id) is True for h in histories)
            if removed and not staged:
                missing.append(
                    f"{kind} x {patch_id}: {saved.name} has its marker but no code of {kind} calls it; "
                    "a patch is removed only after its deprecation stage, recorded in a history"
                )
    return missing


# --- The tests ----------------------------------------------------------------------------------

SOURCES = WorkflowSources(WORKFLOWS_DIR)
PATCHES = patches(SOURCES.calls)
HISTORIES = [SavedHistory.load(p) for p in sorted(HISTORIES_DIR.glob("*.json"))]
ENCRYPTED = data_converter(Settings(codec_keys=SecretStr(new_key_spec())))


def test_there_are_histories_to_replay():
    assert len(HISTORIES) >= 3


@pytest.mark.parametrize("converter", [pydantic_data_converter, ENCRYPTED], ids=["plain", "with-codec"])
@pytest.mark.parametrize("saved", HISTORIES, ids=[h.path.stem for h in HISTORIES])
async def test_history_replays(saved: SavedHistory, converter):
    """Also with encryption on: histories written before it still replay."""
    history = WorkflowHistory.from_json(saved.path.stem, saved.path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=converter)
    retired = retired_by(saved, PATCHES, HISTORIES)
    if not retired:
        await replayer.replay_workflow(history)
        return
    # Runs like this one are over (the policy's visibility check came first): it may no longer
    # replay, but only for the retired patch's sake.
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    failure = result.replay_failure
    assert failure is None or isinstance(failure, workflow.NondeterminismError), failure


def test_every_patch_has_a_saved_history_of_each_path():
    missing = missing_paths(PATCHES, HISTORIES)
    assert not missing, "tests/histories/ lacks a path of these patches:\n  " + "\n  ".join(missing)


def test_every_patch_call_in_workflows_is_found_and_resolved():
    assert not SOURCES.problems, "\n".join(SOURCES.problems)
    assert len(SOURCES.sites) == code_patch_calls(SOURCES), "a patch call the AST scan does not see"


# The scan itself, on a package written for it.

SYNTHETIC = {
    "__init__.py": "",
    "ids.py": 'PLAIN = "plain-v1"\nLATER = ("later-a-v1", "later-b-v1", "later-c-v1")\n',
    "flags.py": (
        "from temporalio import workflow\n"
        "from pkg.ids import LATER, PLAIN\n"
        "FIRST = LATER[:2]\n"
        "DEPRECATED = (LATER[1],)\n"
        "class Flags:\n"
        "    def _patched(self, patch: str) -> bool:\n"
        "        if patch in DEPRECATED:\n"
        "            workflow.deprecate_patch(patch)\n"
        "            return True\n"
        "        return workflow.patched(patch)\n"
        "    def decide(self) -> None:\n"
        "        self._patched(PLAIN)\n"
        "        for patch in FIRST:\n"
        "            self._patched(patch)\n"
    ),
    "journey.py": (
        "from temporalio import workflow as wf\n"
        "from domain.lead import LEAD_WORKFLOW_TYPE\n"
        "with wf.unsafe.imports_passed_through():\n"
        "    from pkg.flags import Flags\n"
        "@wf.defn(name=LEAD_WORKFLOW_TYPE)\n"
        "class Journey:\n"
        "    @wf.run\n"
        "    async def run(self) -> None:\n"
        '        wf.deprecate_patch("gone-v1")\n'
        "        # workflow.patched(in_a_comment) is not a call\n"
        "        if wf.patched(self.which):\n"
        "            pass\n"
    ),
    "other.py": (
        "from temporalio import workflow\n"
        "class Ids:\n"
        '    LATE = "other-late-v1"\n'
        "@workflow.defn\n"
        "class Other:\n"
        "    @workflow.run\n"
        "    async def run(self) -> None:\n"
        '        workflow.patched("other-v1")\n'
        "        workflow.patched(Ids.LATE)\n"
    ),
}


def _synthetic(tmp_path: Path) -> WorkflowSources:
    for name, text in SYNTHETIC.items():
        (tmp_path / name).write_text(text)
    return WorkflowSources(tmp_path, package="pkg")


def test_the_scan_resolves_ids_through_imports_helpers_loops_and_parameters(tmp_path):
    sources = _synthetic(tmp_path)
    from domain.lead import LEAD_WORKFLOW_TYPE

    found = {(c.patch_id, c.workflow_types, c.deprecated) for c in sources.calls}
    assert found == {
        ("plain-v1", (LEAD_WORKFLOW_TYPE,), False),
        ("later-a-v1", (LEAD_WORKFLOW_TYPE,), False),
        ("later-b-v1", (LEAD_WORKFLOW_TYPE,), True),
        ("gone-v1", (LEAD_WORKFLOW_TYPE,), True),
        ("other-v1", ("Other",), False),
        ("other-late-v1", ("Other",), False),
    }
    # The one call it cannot tell is named, and counted among the calls the code holds.
    assert sources.problems == ["pkg/journey.py:11: cannot tell which patch id this call names"]
    # Deprecated by the helper's `if patch in DEPRECATED`, for the one id in it.
    deprecated = {c.patch_id for c in sources.calls if c.deprecated}
    assert deprecated == {"later-b-v1", "gone-v1"}
    assert patches(sources.calls)[LEAD_WORKFLOW_TYPE, "later-b-v1"].deprecated
    assert len(sources.sites) == code_patch_calls(sources) == 6


def _history(kind: str, **markers: bool) -> SavedHistory:
    name = "_".join([kind, *markers]) or kind
    return SavedHistory(Path(f"{name}.json"), kind, {k.replace("_", "-"): v for k, v in markers.items()})


def test_a_live_patch_needs_both_paths_and_a_deprecated_one_only_its_marker():
    known = patches(
        [
            PatchCall("new-v1", ("J",), False, "workflows/j.py:1"),
            PatchCall("old-v1", ("J",), True, "workflows/j.py:2"),
        ]
    )
    before_both = _history("J")
    between = _history("J", old_v1=False)
    with_both = _history("J", new_v1=False, old_v1=False)
    assert missing_paths(known, [with_both, between, before_both]) == []
    # The history from before the deprecated patch is retired: it no longer counts as the live
    # patch's old path, and the deprecated one needs a marked history that must replay.
    assert retired_by(before_both, known, [with_both, before_both]) == ["old-v1"]
    assert retired_by(with_both, known, [with_both, before_both]) == []
    assert [m.split(" (")[0] for m in missing_paths(known, [with_both, before_both])] == ["J x new-v1"]
    assert "WITHOUT its marker" in missing_paths(known, [with_both, before_both])[0]
    only_before = missing_paths(known, [before_both])
    assert sorted(m.split(": no saved history ")[1].split(" its marker")[0] for m in only_before) == [
        "WITH",
        "WITH",
        "WITHOUT",
    ]


def test_a_removed_patch_retires_its_marked_histories_only_after_a_recorded_deprecation():
    known = patches([PatchCall("kept-v1", ("J",), False, "workflows/j.py:1")])
    marked = _history("J", kept_v1=False, gone_v1=False)
    plain = _history("J")
    assert retired_by(marked, known, [marked, plain]) == []
    assert any("gone-v1" in m and "deprecation stage" in m for m in missing_paths(known, [marked, plain]))
    staged = _history("J", kept_v1=False, gone_v1=True)
    assert retired_by(marked, known, [marked, plain, staged]) == ["gone-v1"]
    assert missing_paths(known, [marked, plain, staged]) == []
