"""The form catalogue, reread when its file changes so ops can edit forms without a deploy."""

from __future__ import annotations

import tomllib
from pathlib import Path

from domain.forms import FormDefinition


class FormCatalog:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime: float | None = None
        self._forms: dict[str, FormDefinition] = {}
        self._load()

    def _load(self) -> None:
        mtime = self._path.stat().st_mtime
        if mtime == self._mtime:
            return
        raw = tomllib.loads(self._path.read_text())
        self._forms = {
            form_id: FormDefinition(form_id=form_id, **spec) for form_id, spec in raw.get("forms", {}).items()
        }
        self._mtime = mtime

    def get(self, form_id: str) -> FormDefinition | None:
        try:
            self._load()
        except (OSError, ValueError):
            pass  # a half-saved edit keeps the last good catalogue
        return self._forms.get(form_id)
