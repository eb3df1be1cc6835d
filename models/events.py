"""The event outbox: written in the same transaction as the change it tells of."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime

# BIGINT on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
EventKey = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """Ids increase in commit order: writers take one lock for the rest of their
    transaction before inserting (subscriptions/outbox.py), so a subscriber that saw
    event N can ask for everything after N and miss nothing."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_topic_id", "topic", "id"),)

    id: Mapped[int] = mapped_column(EventKey, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(100), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
