"""Account plans: budgets and forecasts per account, offering area and month."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, UTCDateTime, Versioned
from models.users import enum_column


class ForecastKind(enum.Enum):
    FIXED = "FIXED"  # one figure per month, locked once the month has begun
    ROLLING = "ROLLING"  # every submission a new version; the latest is current


class Budget(Versioned, Base):
    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("account_id", "offering_area_id", "period"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    offering_area_id: Mapped[int] = mapped_column(ForeignKey("offering_areas.id"),
                                                  nullable=False)
    period: Mapped[date] = mapped_column(Date, nullable=False, index=True)  # a month's 1st
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)


class Forecast(Versioned, Base):
    """A FIXED forecast is one row per key, changed in place until its month begins. A
    ROLLING forecast is a new row per submission and never changes."""

    __tablename__ = "forecasts"
    __table_args__ = (
        Index("ix_forecasts_account_id_offering_area_id_period", "account_id",
              "offering_area_id", "period", "submitted_at"),
        # One FIXED figure per account, area and month.
        Index("uq_forecasts_fixed_key", "account_id", "offering_area_id", "period",
              unique=True, sqlite_where=text("kind = 'FIXED'"),
              postgresql_where=text("kind = 'FIXED'")),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    offering_area_id: Mapped[int] = mapped_column(ForeignKey("offering_areas.id"),
                                                  nullable=False)
    period: Mapped[date] = mapped_column(Date, nullable=False, index=True)  # a month's 1st
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    kind: Mapped[ForecastKind] = mapped_column(enum_column(ForecastKind), nullable=False)
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
