"""Who may write what: one rule for every record that has an owner.

Reads are filtered by each area's read policy in loaders/; writes ask here.
ADMIN writes everything, MANAGER what the team's members own, REP what it owns,
PARTNER nothing, except through an API key with the write:opportunities scope:
the opportunities of the accounts shared with its org (resolvers/opportunities.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.users import Role, User, Viewer


@dataclass(frozen=True, slots=True)
class Owner:
    id: int
    team_id: int | None
    role: Role
    active: bool


async def load_owner(session: AsyncSession, user_id: int) -> Owner | None:
    """The user as an owner, read once per transaction: a mutation checking who owns a
    record and then naming the owner's team in its event (resolvers/opportunities.py)
    asks twice. No mutation changes a user's team, role or active flag and then asks."""
    owners: dict[int, Owner | None] = session.info.setdefault("owners", {})
    if user_id in owners:
        return owners[user_id]
    row = (
        await session.execute(
            select(User.id, User.team_id, User.role, User.active).where(User.id == user_id)
        )
    ).first()
    owner = owners[user_id] = Owner(row.id, row.team_id, row.role, row.active) if row else None
    return owner


def can_write(viewer: Viewer, owner: Owner) -> bool:
    if viewer.role is Role.ADMIN:
        return True
    if viewer.role is Role.MANAGER:
        return owner.id == viewer.user_id or (
            viewer.team_id is not None and owner.team_id == viewer.team_id
        )
    if viewer.role is Role.REP:
        return owner.id == viewer.user_id
    return False


def partner_writes(viewer: Viewer) -> bool:
    """A partner API key that may write opportunities on the org's shared accounts."""
    return viewer.is_partner and viewer.key_id is not None and \
        "write:opportunities" in viewer.scopes


def can_assign(viewer: Viewer, owner: Owner) -> str | None:
    """Why ``viewer`` may not make ``owner`` the owner of a record, or None."""
    if not owner.active:
        return "the owner is deactivated"
    if owner.role is Role.PARTNER:
        return "partner users cannot own records"
    if not can_write(viewer, owner):
        if viewer.role is Role.REP:
            return "reps can only assign records to themselves"
        return "you can only assign records to members of your team"
    return None
