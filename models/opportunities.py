"""Pipelines with ordered phases, opportunities, and the history of phase moves."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, Timestamped, UTCDateTime, Versioned
from models.users import enum_column


class PipelineKind(enum.Enum):
    SALES = "SALES"
    MARKETING = "MARKETING"


class PhaseOutcome(enum.Enum):
    OPEN = "OPEN"
    WON = "WON"
    LOST = "LOST"


class ForecastCategory(enum.Enum):
    PIPELINE = "PIPELINE"
    BEST_CASE = "BEST_CASE"
    COMMIT = "COMMIT"
    CLOSED = "CLOSED"
    OMITTED = "OMITTED"


class Pipeline(Versioned, Base):
    __tablename__ = "pipelines"

    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    kind: Mapped[PipelineKind] = mapped_column(enum_column(PipelineKind), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class Phase(Versioned, Base):
    __tablename__ = "phases"
    __table_args__ = (
        # Unique among the phases in use: a removed phase keeps its name for the history,
        # and an admin may add a phase of that name again.
        Index("uq_phases_pipeline_id_name", "pipeline_id", "name", unique=True,
              sqlite_where=text("removed_at IS NULL"),
              postgresql_where=text("removed_at IS NULL")),
        CheckConstraint("probability >= 0 AND probability <= 100", name="probability_percent"),
    )

    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"), nullable=False,
                                             index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    # Whole percent, 0 to 100: what an opportunity entering the phase gets by default.
    probability: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[PhaseOutcome] = mapped_column(enum_column(PhaseOutcome), nullable=False)
    forecast_category: Mapped[ForecastCategory] = mapped_column(
        enum_column(ForecastCategory), nullable=False)
    # Set by removePhase: the phase leaves its pipeline's phases and takes no more
    # entries, but stays for the phase history that refers to it.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Opportunity(Versioned, Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        CheckConstraint("probability >= 0 AND probability <= 100", name="probability_percent"),
        Index("ix_opportunities_pipeline_id_phase_id", "pipeline_id", "phase_id"),
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), nullable=False,
                                            index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"), nullable=False)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id"), nullable=False, index=True)
    probability: Mapped[int] = mapped_column(Integer, nullable=False)
    expected_close_date: Mapped[date | None] = mapped_column(Date, index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    offering_area_id: Mapped[int | None] = mapped_column(ForeignKey("offering_areas.id"),
                                                         index=True)
    source_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"),
                                                           index=True)
    lost_reason: Mapped[str | None] = mapped_column(Text)
    phase_entered_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PhaseChange(Timestamped, Base):
    """One entry of an opportunity into a phase; creation is the entry with no from."""

    __tablename__ = "phase_changes"
    __table_args__ = (Index("ix_phase_changes_opportunity_id_changed_at", "opportunity_id",
                            "changed_at"),)

    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id"), nullable=False)
    from_phase_id: Mapped[int | None] = mapped_column(ForeignKey("phases.id"))
    to_phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id"), nullable=False)
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    # The opportunity as it stood after the move, so the pipeline can be replayed as of
    # any date without the current row.
    amount: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    probability: Mapped[int] = mapped_column(Integer, nullable=False)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
