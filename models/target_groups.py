"""Target groups: accounts or contacts picked by a saved filter and by hand."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped, Versioned
from models.users import enum_column


class TargetGroupKind(enum.Enum):
    ACCOUNT = "ACCOUNT"
    CONTACT = "CONTACT"


class TargetGroupVisibility(enum.Enum):
    PERSONAL = "PERSONAL"  # its owner alone
    SHARED = "SHARED"  # every staff member


class TargetGroup(Versioned, Base):
    __tablename__ = "target_groups"

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[TargetGroupKind] = mapped_column(enum_column(TargetGroupKind), nullable=False)
    visibility: Mapped[TargetGroupVisibility] = mapped_column(
        enum_column(TargetGroupVisibility), nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    # An AccountFilter or ContactFilter (by kind) as the API takes it: GraphQL names and
    # values, so it reads back through the same input type and filter compiler.
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class TargetGroupEntry(Timestamped, Base):
    """A static member, or with ``excluded`` an exclusion, of a target group."""

    __tablename__ = "target_group_entries"
    __table_args__ = (
        UniqueConstraint("target_group_id", "account_id"),
        UniqueConstraint("target_group_id", "contact_id"),
        CheckConstraint("(account_id IS NULL) <> (contact_id IS NULL)", name="one_member"),
    )

    target_group_id: Mapped[int] = mapped_column(
        ForeignKey("target_groups.id", ondelete="CASCADE"), nullable=False)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    excluded: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
