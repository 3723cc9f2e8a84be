"""Which message each template name is on the email platforms that cannot send a template by name
(config/email_templates.toml): validated once, when the worker starts."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# `sequence:<id>` or `tag:<id>`: Kit's ids are integers.
KitTarget = Annotated[str, StringConstraints(pattern=r"^(sequence|tag):[0-9]+$")]
TemplateName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]


class EmailTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kit: dict[TemplateName, KitTarget] = {}
    # HubSpot: the marketing (or transactional) email's content id, sent by the single-send API.
    hubspot: dict[TemplateName, Annotated[int, Field(gt=0)]] = {}


def load_email_templates(path: Path) -> EmailTemplates:
    """The file's templates; a missing file is none (every template id must then be the platform's)."""
    if not path.exists():
        return EmailTemplates()
    with path.open("rb") as f:
        return EmailTemplates.model_validate(tomllib.load(f))
