"""The audit log: its read policy (admins only) and its filter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, select, true

from loaders.query import FilterSpec, Sortable
from models.audit import AuditEntry
from models.users import Viewer

AUDIT = AuditEntry.__table__


def visible_audit_entries(viewer: Viewer) -> ColumnElement[bool]:
    return true() if viewer.is_admin else false()


@dataclass(frozen=True)
class AuditConditions:
    """The auditLog filter, its ids already decoded; None means "any"."""

    actor_id: int | None = None
    action: str | None = None
    entity_type: str | None = None
    entity_id: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.actor_id is not None:
            clauses.append(AUDIT.c.actor_id == self.actor_id)
        if self.action is not None:
            clauses.append(AUDIT.c.action == self.action)
        if self.entity_type is not None:
            clauses.append(AUDIT.c.entity_type == self.entity_type)
        if self.entity_id is not None:
            clauses.append(AUDIT.c.entity_id == self.entity_id)
        if self.since is not None:
            clauses.append(AUDIT.c.created_at >= self.since)
        if self.until is not None:
            clauses.append(AUDIT.c.created_at < self.until)
        return clauses


# The filter is a plain input (not operator inputs), applied by AuditConditions; the
# spec only carries the read policy for list_rows.
AUDIT_FILTER = FilterSpec(fields={}, visibility=visible_audit_entries)

AUDIT_ORDER = {"AT": Sortable(AUDIT.c.created_at)}


def audit_statement(viewer: Viewer, conditions: AuditConditions) -> Select[Any]:
    return select(AUDIT).where(visible_audit_entries(viewer), *conditions.where())
