"""Campaigns (events, emails, call campaigns, customer projects) and their members."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, UTCDateTime, Versioned
from models.users import enum_column


class CampaignType(enum.Enum):
    EVENT = "EVENT"
    EMAIL = "EMAIL"
    CALL = "CALL"
    PROJECT = "PROJECT"


class CampaignStatus(enum.Enum):
    PLANNED = "PLANNED"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class MemberStatus(enum.Enum):
    # EVENT
    INVITED = "INVITED"
    REGISTERED = "REGISTERED"
    WAITLISTED = "WAITLISTED"
    ATTENDED = "ATTENDED"
    NO_SHOW = "NO_SHOW"
    DECLINED = "DECLINED"
    # CALL
    TO_CALL = "TO_CALL"
    CALLED = "CALLED"
    REACHED = "REACHED"
    NOT_REACHED = "NOT_REACHED"
    # EMAIL
    SENT = "SENT"
    OPENED = "OPENED"
    BOUNCED = "BOUNCED"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    # PROJECT
    INVOLVED = "INVOLVED"
    RESPONDED = "RESPONDED"


class Campaign(Versioned, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on",
                        name="period"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_not_negative"),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    type: Mapped[CampaignType] = mapped_column(enum_column(CampaignType), nullable=False)
    status: Mapped[CampaignStatus] = mapped_column(enum_column(CampaignStatus), nullable=False)
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    budget: Mapped[Decimal | None] = mapped_column(Money())
    actual_cost: Mapped[Decimal | None] = mapped_column(Money())
    expected_revenue: Mapped[Decimal | None] = mapped_column(Money())
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    # Events only.
    event_place: Mapped[str | None] = mapped_column(String(300))
    event_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    capacity: Mapped[int | None] = mapped_column(Integer)


class CampaignMember(Versioned, Base):
    __tablename__ = "campaign_members"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id"),
        Index("ix_campaign_members_campaign_id_status", "campaign_id", "status"),
    )

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), nullable=False,
                                            index=True)
    status: Mapped[MemberStatus] = mapped_column(enum_column(MemberStatus), nullable=False)
    # Call campaigns: who calls.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When it joined the waiting list: the first to join moves up first.
    waitlisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notes: Mapped[str | None] = mapped_column(Text)
