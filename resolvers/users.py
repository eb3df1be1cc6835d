"""Users and teams: who is asking, and the user and team lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, or_, select

from loaders.container import Loaders
from loaders.query import PageArgs
from loaders.users import TEAMS, USER_FILTER, USER_ORDER, USERS, users_statement, visible_teams
from models.db import Database, Read
from models.users import PartnerOrg, Viewer
from resolvers.pages import Listing, list_rows

ORGS = PartnerOrg.__table__


def viewer_statement() -> Select[Any]:
    """An active user with its partner org's switches: one statement per request.
    A partner user of a deactivated org is nobody, as a deactivated user is."""
    return (
        select(USERS, ORGS.c.allow_introspection, ORGS.c.trusted_documents_only)
        .outerjoin(ORGS, ORGS.c.id == USERS.c.partner_org_id)
        .where(USERS.c.active.is_(True),
               or_(USERS.c.partner_org_id.is_(None), ORGS.c.active.is_(True)))
    )


def viewer_from_row(row: Any, *, key_id: int | None = None,
                    scopes: frozenset[str] = frozenset()) -> Viewer:
    return Viewer(
        user_id=row.id, email=row.email, name=row.name, role=row.role, team_id=row.team_id,
        partner_org_id=row.partner_org_id, key_id=key_id, scopes=scopes,
        allow_introspection=bool(row.allow_introspection),
        trusted_documents_only=bool(row.trusted_documents_only),
    )


# Built once: every request reads its viewer, and building the statement costs more
# than running it.
VIEWER_BY_ID = Read(viewer_statement().where(USERS.c.id == bindparam("user_id")))


async def load_viewer(db: Database, user_id: int) -> Viewer | None:
    """The active user a token names, or None: a deactivated user is nobody."""
    rows = await db.rows(VIEWER_BY_ID, {"user_id": user_id})
    return viewer_from_row(rows[0]) if rows else None


async def find_user_id_by_email(db: Database, email: str) -> int | None:
    statement = select(USERS.c.id).where(USERS.c.email == email.strip().lower())
    async with db.read() as connection:
        return (await connection.execute(statement)).scalar_one_or_none()


async def list_users(
    *, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any
) -> Listing:
    return await list_rows(
        loaders=loaders, statement=users_statement(loaders.viewer), spec=USER_FILTER,
        filter=filter, orderable=USER_ORDER, default_order=("NAME",), order_by=order_by,
        args=args,
    )


async def list_teams(*, loaders: Loaders) -> list[Any]:
    statement = select(TEAMS).where(visible_teams(loaders.viewer)).order_by(TEAMS.c.name)
    async with loaders.db.read() as connection:
        return list((await connection.execute(statement)).all())
