"""Users, teams and partner organisations, and the Viewer a request acts as."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import Boolean, CheckConstraint, Enum, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Versioned


class Role(enum.Enum):
    ADMIN = "ADMIN"
    MANAGER = "MANAGER"
    REP = "REP"
    PARTNER = "PARTNER"


def enum_column(enum_class: type[enum.Enum]) -> Enum:
    """Enums are stored as their names in a VARCHAR: adding a value needs no migration."""
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        validate_strings=True,
        length=32,
    )


class PartnerOrg(Versioned, Base):
    __tablename__ = "partner_orgs"

    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # A partner org sees the schema only when allowed, and in trusted-documents mode
    # runs only the documents registered for it (see models/documents.py).
    allow_introspection: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false())
    trusted_documents_only: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false())


class Team(Versioned, Base):
    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    # users and teams point at each other; the constraint is added after both exist.
    manager_id: Mapped[int | None] = mapped_column(
        Integer,
        ForeignKey("users.id", use_alter=True, name="fk_teams_manager_id_users"),
        index=True,
    )


class User(Versioned, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "(role = 'PARTNER' AND partner_org_id IS NOT NULL)"
            " OR (role <> 'PARTNER' AND partner_org_id IS NULL)",
            name="partner_has_org",
        ),
    )

    # Stored lower-cased, so uniqueness is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[Role] = mapped_column(enum_column(Role), nullable=False)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    partner_org_id: Mapped[int | None] = mapped_column(ForeignKey("partner_orgs.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a request acts as: read from the database on every request, never from
    the token alone, so a role change or deactivation takes effect at once."""

    user_id: int
    email: str
    name: str
    role: Role
    team_id: int | None
    partner_org_id: int | None
    # Set when a partner API key acts for its org's API user: what the key may do.
    key_id: int | None = None
    scopes: frozenset[str] = frozenset()
    # The partner org's switches (see PartnerOrg); staff are not bound by them.
    allow_introspection: bool = False
    trusted_documents_only: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_partner(self) -> bool:
        return self.role is Role.PARTNER
