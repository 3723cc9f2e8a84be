"""The form catalogue, reread when its file changes so ops can edit forms without a deploy.

Besides each form's rules, what a page embedding it shows (`consent_text`, `labels`) and how long
a person takes at least to fill it (`min_fill_seconds`, the bot check's threshold).
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from domain.forms import FormDefinition
from domain.webforms import DEFAULT_MIN_FILL


class PageSettings:
    def __init__(self, spec: dict[str, Any]) -> None:
        text = spec.get("consent_text")
        self.consent_text: str | None = text if isinstance(text, str) and text.strip() else None
        seconds = spec.get("min_fill_seconds")
        self.min_fill = (
            timedelta(seconds=float(seconds))
            if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0
            else DEFAULT_MIN_FILL
        )
        labels = spec.get("labels")
        self.labels: dict[str, str] = (
            {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
        )


class FormCatalog:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime: float | None = None
        self._forms: dict[str, FormDefinition] = {}
        self._pages: dict[str, PageSettings] = {}
        self._load()

    def _load(self) -> None:
        mtime = self._path.stat().st_mtime
        if mtime == self._mtime:
            return
        raw = tomllib.loads(self._path.read_text())
        forms = raw.get("forms", {})
        self._forms = {form_id: FormDefinition(form_id=form_id, **spec) for form_id, spec in forms.items()}
        self._pages = {form_id: PageSettings(spec) for form_id, spec in forms.items()}
        self._mtime = mtime

    def get(self, form_id: str) -> FormDefinition | None:
        try:
            self._load()
        except (OSError, ValueError):
            pass  # a half-saved edit keeps the last good catalogue
        return self._forms.get(form_id)

    def page(self, form_id: str) -> PageSettings:
        self.get(form_id)
        return self._pages.get(form_id) or PageSettings({})
