"""The lifecycle stages a lead moves through (its own module: sequences and scoring name stages too)."""

from __future__ import annotations

from enum import StrEnum


class LifecycleStage(StrEnum):
    ANONYMOUS = "anonymous"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    CUSTOMER = "customer"
    ADVOCATE = "advocate"
    DISQUALIFIED = "disqualified"
    RECYCLED = "recycled"
