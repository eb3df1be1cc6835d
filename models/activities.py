"""Activities (calls, meetings, tasks), their types and points, and weekly targets."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, Versioned
from models.users import enum_column


class ActivityStatus(enum.Enum):
    PLANNED = "PLANNED"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


class TargetMetric(enum.Enum):
    COUNT = "COUNT"
    POINTS = "POINTS"


class ActivityType(Versioned, Base):
    __tablename__ = "activity_types"
    __table_args__ = (CheckConstraint("points >= 0", name="points_not_negative"),)

    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    points: Mapped[int] = mapped_column(Integer, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class Activity(Versioned, Base):
    __tablename__ = "activities"
    __table_args__ = (
        # Attainment sums a user's completed activities per week.
        Index("ix_activities_owner_id_completed_week", "owner_id", "completed_week"),
        CheckConstraint(
            "(status = 'DONE' AND completed_at IS NOT NULL AND completed_week IS NOT NULL"
            " AND points_earned IS NOT NULL)"
            " OR (status <> 'DONE' AND completed_at IS NULL AND completed_week IS NULL"
            " AND points_earned IS NULL)",
            name="done_has_completion",
        ),
    )

    type_id: Mapped[int] = mapped_column(ForeignKey("activity_types.id"), nullable=False,
                                         index=True)
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    notes: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"),
                                                       index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[ActivityStatus] = mapped_column(enum_column(ActivityStatus), nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # The Monday of the ISO week, in the organisation's time zone, that completed_at
    # falls in: written with completed_at, so attainment groups by a plain column on
    # every database (SQLite has no time zones).
    completed_week: Mapped[date | None] = mapped_column(Date)
    # The type's points at completion: a later change of the type's points does not
    # rewrite what was earned.
    points_earned: Mapped[int | None] = mapped_column(Integer)


class ActivityTarget(Versioned, Base):
    __tablename__ = "activity_targets"
    __table_args__ = (CheckConstraint("target >= 0", name="target_not_negative"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    week: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    metric: Mapped[TargetMetric] = mapped_column(enum_column(TargetMetric), nullable=False)
    activity_type_id: Mapped[int | None] = mapped_column(ForeignKey("activity_types.id"))
    target: Mapped[int] = mapped_column(Integer, nullable=False)


# One target per user, week, metric and type, where "no type" is a key too: NULLs are
# distinct in a plain unique constraint, so the type takes part as COALESCE(type, 0).
Index("uq_activity_targets_key", ActivityTarget.user_id, ActivityTarget.week,
      ActivityTarget.metric, func.coalesce(ActivityTarget.activity_type_id, 0), unique=True)
