"""The audit log: every administration change and ownership transfer writes one entry,
in the transaction of the change.

``before`` and ``after`` hold the fields the change concerned, as JSON: money and
quantities as strings, times in ISO 8601, enums by name.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import AuditEntry
from models.users import Viewer


def as_json(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [as_json(v) for v in value]
    return value


def fields_of(record: Any, *names: str) -> dict[str, Any]:
    """The named attributes of a record, as JSON: what an entry's before/after hold."""
    return {name: as_json(getattr(record, name)) for name in names}


async def record_audit(session: AsyncSession, viewer: Viewer, *, action: str,
                       entity_type: str, entity_id: int | None,
                       before: dict[str, Any] | None = None,
                       after: dict[str, Any] | None = None) -> AuditEntry:
    """One entry, in the caller's transaction; ``action`` is "<entity>.<verb>", e.g.
    "user.created", "phase.removed", "ownership.transferred"."""
    entry = AuditEntry(actor_id=viewer.user_id, action=action, entity_type=entity_type,
                       entity_id=entity_id, before=as_json(before), after=as_json(after))
    session.add(entry)
    return entry
