"""Accounts, their contacts, and the shares that grant partners an account."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamped, UTCDateTime, Versioned
from models.users import enum_column


class AccountType(enum.Enum):
    PROSPECT = "PROSPECT"
    CUSTOMER = "CUSTOMER"
    PARTNER = "PARTNER"
    COMPETITOR = "COMPETITOR"
    OTHER = "OTHER"


class Account(Versioned, Base):
    __tablename__ = "accounts"

    name: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    business_id: Mapped[str | None] = mapped_column(String(50), unique=True)
    industry: Mapped[str | None] = mapped_column(String(100))
    type: Mapped[AccountType] = mapped_column(enum_column(AccountType), nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    website: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(50))
    street: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(100))
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Contact(Versioned, Base):
    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_account_id_last_name", "account_id", "last_name"),)

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(50))
    title: Mapped[str | None] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    email_consent: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    phone_consent: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class AccountShare(Timestamped, Base):
    __tablename__ = "account_shares"
    __table_args__ = (UniqueConstraint("account_id", "partner_org_id"),)

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    partner_org_id: Mapped[int] = mapped_column(
        ForeignKey("partner_orgs.id"), nullable=False, index=True
    )
