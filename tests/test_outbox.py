"""The outbox hands out event ids in commit order: a writer takes the outbox lock before
its event row, and so its id, is made, and holds it to commit. Readers that resume
"after N" then never skip an event that committed late. On PostgreSQL the lock and the
insert are one statement."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, insert, select, text

from models.base import utcnow
from models.db import Database
from models.events import Event
from subscriptions.outbox import OUTBOX_LOCK, record_event
from tests.test_timeouts import backends_at_work, eventually, postgres_only, waiting_on_lock


async def _last_id_handed_out(db: Database) -> int:
    """The events' sequence as it stands: ids taken by transactions not yet committed
    included (a sequence is not transactional)."""
    async with db.read() as connection:
        return int((await connection.execute(text(
            "SELECT coalesce(pg_sequence_last_value("
            "pg_get_serial_sequence('events', 'id')::regclass), 0)"))).scalar_one())


@postgres_only
async def test_an_event_takes_its_id_only_once_it_holds_the_outbox_lock(db: Database) -> None:
    sent: list[str] = []

    async def write() -> int:
        async with db.transaction() as session:
            db.watchers.append(sent.append)
            try:
                event = await record_event(session, topic="test.outbox", payload={"n": 2})
            finally:
                db.watchers.remove(sent.append)
        return event.id

    async with db.engine.connect() as holder:
        # Another writer, between its event's insert and its commit.
        await holder.begin()
        await holder.execute(select(func.pg_advisory_xact_lock(OUTBOX_LOCK)))
        before = await _last_id_handed_out(db)
        writer = asyncio.create_task(write())

        async def waiting() -> list[dict[str, Any]]:
            # The lock's CTE leads the statement (subscriptions/outbox.py).
            return waiting_on_lock(await backends_at_work(db, holder), "WITH OUTBOX_LOCK")

        await eventually(waiting, "the writer waiting for the outbox lock")
        # It waits with no id taken: one taken now would belong before the holder's.
        assert await _last_id_handed_out(db) == before
        held = (await holder.execute(insert(Event).values(
            topic="test.outbox", payload={"n": 1}, created_at=utcnow()).returning(Event.id)
        )).scalar_one()
        await holder.commit()
    written = await writer
    assert written > held
    # The lock and the insert go as one statement.
    sent.clear()
    assert await write() > written
    assert len(sent) == 1
    assert "pg_advisory_xact_lock" in sent[0]
    assert "INSERT INTO events" in sent[0]
