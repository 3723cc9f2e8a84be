"""Cuts the operations a client uses out of a platform's published OpenAPI document, with every
schema they reference, so the contract tests check against the platform's own definitions
without vendoring megabytes.

    .venv/bin/python -m tests.specs.vendor FULL.json OUT.json "post /api/profile-import" ...

The source, version and commit go in the directory's README.md beside the cut.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def cut(document: dict[str, Any], operations: list[tuple[str, str]]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path in operations:
        paths.setdefault(path, {})[method] = document["paths"][path][method]
    components: dict[str, dict[str, Any]] = {}
    pending, seen = _refs(paths), set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)
        node = _resolve(document, ref)
        components.setdefault(kind, {})[name] = node
        pending |= _refs(node) - seen
    return {
        "openapi": document["openapi"],
        "info": document["info"],
        "paths": paths,
        "components": {kind: dict(sorted(items.items())) for kind, items in sorted(components.items())},
    }


def main(argv: list[str]) -> int:
    source, target, *wanted = argv
    operations = [(w.split(" ", 1)[0].lower(), w.split(" ", 1)[1]) for w in wanted]
    document = json.loads(Path(source).read_text())
    Path(target).write_text(json.dumps(cut(document, operations), indent=1, sort_keys=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
