"""The outbox: events written in the mutation's transaction, read back in id order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.db import Database
from models.events import Event

OPPORTUNITY_TOPIC = "opportunity.phase_changed"
TARGET_TOPIC = "target.attainment_changed"
# Who may no longer be let in: the servers close their open WebSockets (4403).
KEY_REVOKED_TOPIC = "partner_key.revoked"  # {"keyId"}
USER_DEACTIVATED_TOPIC = "user.deactivated"  # {"userId"}
ORG_DEACTIVATED_TOPIC = "partner_org.deactivated"  # {"partnerOrgId"}

# One lock for all outbox writers, held to the end of their transaction: event ids
# are then handed out in commit order, so "every event after N" never skips one
# that committed late. Writers hold it only from their event insert to commit.
OUTBOX_LOCK = 0x6372_6D67  # "crmg"

EVENTS = Event.__table__


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    topic: str
    payload: dict[str, Any]
    created_at: datetime


def _locked_insert() -> Insert:
    """The event's insert behind the outbox lock, in one statement: the lock is a
    MATERIALIZED CTE (a volatile function's, which PostgreSQL would not fold in
    anyway) that the insert's one row is selected from, so the lock is held before
    the row, and its id, are made."""
    locked = select(func.pg_advisory_xact_lock(OUTBOX_LOCK).label("locked")) \
        .cte("outbox_lock").prefix_with("MATERIALIZED", dialect="postgresql")
    row = select(bindparam("topic", type_=EVENTS.c.topic.type),
                 bindparam("payload", type_=EVENTS.c.payload.type),
                 bindparam("created_at", type_=EVENTS.c.created_at.type)).select_from(locked)
    return EVENTS.insert().from_select(["topic", "payload", "created_at"], row) \
        .returning(EVENTS.c.id)


_LOCKED_INSERT = _locked_insert()
_INSERT = EVENTS.insert().returning(EVENTS.c.id)


async def record_event(session: AsyncSession, *, topic: str, payload: dict[str, Any]
                       ) -> EventRecord:
    created_at = utcnow()
    values = {"topic": topic, "payload": payload, "created_at": created_at}
    if session.get_bind().dialect.name == "postgresql":
        result = await session.execute(_LOCKED_INSERT, values)
    else:  # SQLite: one writer at a time anyway
        result = await session.execute(_INSERT, values)
    return EventRecord(result.scalar_one(), topic, payload, created_at)


async def events_after(db: Database, after: int, *, topics: frozenset[str] | None = None,
                       limit: int = 500) -> list[EventRecord]:
    statement = select(EVENTS).where(EVENTS.c.id > after).order_by(EVENTS.c.id).limit(limit)
    if topics is not None:
        statement = statement.where(EVENTS.c.topic.in_(topics))
    async with db.read() as connection:
        rows = (await connection.execute(statement)).all()
    return [EventRecord(r.id, r.topic, r.payload, r.created_at) for r in rows]


async def last_event_id(db: Database) -> int:
    async with db.read() as connection:
        return int((await connection.execute(select(func.max(EVENTS.c.id)))).scalar() or 0)


async def prune_events(db: Database, *, older_than: timedelta) -> int:
    """Delete events older than the retention; replays further back than that fail."""
    async with db.transaction() as session:
        result = await session.execute(
            delete(EVENTS).where(EVENTS.c.created_at < utcnow() - older_than))
    return result.rowcount or 0
