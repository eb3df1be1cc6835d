"""Users, teams, ownership transfers and the audit log: administration through the API.

Only admins change users and teams. Every change writes its audit entry in its own
transaction (resolvers/audit.py). Rules where the issue is silent:

- A team's manager is an active MANAGER or ADMIN who is a member of the team. A manager
  who leaves the team (moveUserToTeam, updateUser teamId) leaves it without a manager,
  and a user who manages a team keeps a managing role until another manager is named.
- Deactivating a user keeps everything it owns and the teams it manages; its tokens and
  open WebSockets are refused from the commit on. An admin cannot deactivate itself, nor
  change its own role, so an organisation always keeps an admin.
- A transfer moves all accounts and contacts, the open opportunities and the planned
  activities: closed deals and done activities stay with who won or did them, as the
  history of attainment and won business.
- A change of an open opportunity's owner team changes the team pipeline boards: each
  such opportunity gets an UPDATED event for its new team and one for its old team.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.audit import AUDIT_FILTER, AUDIT_ORDER, AuditConditions, audit_statement
from loaders.container import Loaders
from loaders.errors import BadUserInput, Forbidden
from loaders.ids import decode_any_id, decode_id
from loaders.query import PageArgs
from models.accounts import Account, Contact
from models.activities import Activity, ActivityStatus
from models.base import utcnow
from models.db import Database
from models.opportunities import Opportunity
from models.users import PartnerOrg, Role, Team, User, Viewer
from resolvers.audit import fields_of, record_audit
from resolvers.errors import UserErrorCode
from resolvers.mutations import (
    Checks,
    Outcome,
    find_record,
    forbidden,
    mutate,
    require_version,
)
from resolvers.opportunities import ChangeKind
from resolvers.pages import Listing, list_rows
from subscriptions.hub import EventHub
from subscriptions.outbox import (
    OPPORTUNITY_TOPIC,
    USER_DEACTIVATED_TOPIC,
    EventRecord,
    record_event,
)

USER_FIELDS = ("email", "name", "role", "team_id", "partner_org_id", "active")
TEAM_FIELDS = ("name", "manager_id")
MANAGING_ROLES = frozenset({Role.MANAGER, Role.ADMIN})
STAFF_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.REP})

ACCOUNTS = Account.__table__
CONTACTS = Contact.__table__
OPPORTUNITIES = Opportunity.__table__
ACTIVITIES = Activity.__table__
TEAMS = Team.__table__
USERS = User.__table__


class OwnershipScope(enum.Enum):
    ACCOUNTS = "ACCOUNTS"
    CONTACTS = "CONTACTS"
    OPPORTUNITIES = "OPPORTUNITIES"
    ACTIVITIES = "ACTIVITIES"


@dataclass
class Transfer:
    from_user: User
    to_user: User
    moved: dict[OwnershipScope, int]


@dataclass
class _Changes:
    """What a mutation publishes after commit."""

    events: list[EventRecord] = field(default_factory=list)

    async def announce(self, events: EventHub) -> None:
        # The hub reads the outbox in id order up to what it is told of: the last
        # event wakes it for all of them, and tells the other processes once.
        if self.events:
            await events.announce(self.events[-1])


def _admin(viewer: Viewer, what: str) -> None:
    if not viewer.is_admin:
        raise forbidden(f"only admins {what}")


# --- reading inputs -----------------------------------------------------------------------


async def _user(session: AsyncSession, checks: Checks, field_name: str, gid: str | None
                ) -> User | None:
    return await find_record(session, checks, field_name, gid, User, "user")


async def _team(session: AsyncSession, checks: Checks, field_name: str, gid: str | None
                ) -> Team | None:
    return await find_record(session, checks, field_name, gid, Team, "team")


async def _unique_team_name(session: AsyncSession, checks: Checks, name: str | None,
                            team_id: int | None = None) -> None:
    if name is None:
        return
    statement = select(TEAMS.c.id).where(func.lower(TEAMS.c.name) == name.lower())
    if team_id is not None:
        statement = statement.where(TEAMS.c.id != team_id)
    if (await session.execute(statement)).first() is not None:
        checks.fail("name", f"a team named {name!r} exists already", UserErrorCode.CONFLICT)


async def _managed_team(session: AsyncSession, user_id: int) -> Team | None:
    return (await session.execute(select(Team).where(Team.manager_id == user_id)
                                  .order_by(Team.id).limit(1))).scalar_one_or_none()


def _manager_problem(user: User, team_id: int | None) -> str | None:
    """Why ``user`` cannot manage team ``team_id`` (None: a team it is about to join),
    or None."""
    if not user.active:
        return "the user is deactivated"
    if user.role not in MANAGING_ROLES:
        return "a team's manager has the role MANAGER or ADMIN"
    if team_id is not None and user.team_id != team_id:
        return "the manager must be a member of the team: move the user to it first"
    return None


# --- users --------------------------------------------------------------------------------


async def create_user(*, viewer: Viewer, db: Database, email: str, name: str, role: Role,
                      team_id: str | None, partner_org_id: str | None) -> Outcome[User]:
    async def action() -> User:
        _admin(viewer, "create users")
        async with db.transaction() as session:
            checks = Checks()
            address = checks.email("email", email)
            if address is not None:
                address = address.lower()
                if (await session.execute(select(USERS.c.id).where(USERS.c.email == address))
                        ).first() is not None:
                    checks.fail("email", f"a user with the email {address} exists already",
                                UserErrorCode.CONFLICT)
            user_name = checks.text("name", name, max_length=200, required=True)
            team = await _team(session, checks, "teamId", team_id)
            org_key = checks.global_id("partnerOrgId", partner_org_id, "PartnerOrg")
            if role is Role.PARTNER:
                if team_id is not None:
                    checks.fail("teamId", "partner users belong to no team")
                if partner_org_id is None:
                    checks.fail("partnerOrgId", "a partner user belongs to a partner org")
                elif org_key is not None:
                    org = await session.get(PartnerOrg, org_key)
                    if org is None:
                        checks.fail("partnerOrgId", "partner org not found",
                                    UserErrorCode.NOT_FOUND)
                    elif not org.active:
                        checks.fail("partnerOrgId", "the partner org is deactivated")
            elif partner_org_id is not None:
                checks.fail("partnerOrgId", "only partner users belong to a partner org")
            checks.raise_if_any()
            user = User(email=address, name=user_name, role=role,
                        team_id=team.id if team else None,
                        partner_org_id=org_key if role is Role.PARTNER else None, active=True)
            session.add(user)
            await session.flush()
            await record_audit(session, viewer, action="user.created", entity_type="User",
                               entity_id=user.id, after=fields_of(user, *USER_FIELDS))
        return user

    return await mutate(action, on_duplicate="a user with that email exists already")


async def update_user(*, viewer: Viewer, db: Database, events: EventHub, user_id: str,
                      expected_version: int, changes: dict[str, Any]) -> Outcome[User]:
    """Only the fields sent change; teamId null takes the user out of its team."""
    published = _Changes()

    async def action() -> User:
        _admin(viewer, "change users")
        async with db.transaction() as session:
            checks = Checks()
            user = await _user(session, checks, "id", user_id)
            checks.raise_if_any()
            assert user is not None
            require_version(user.version, expected_version)
            before = fields_of(user, *USER_FIELDS)
            with session.no_autoflush:  # one flush, one new version
                if "name" in changes:
                    user.name = checks.text("name", changes["name"], max_length=200,
                                            required=True) or user.name
                if "role" in changes:
                    await _check_role(session, checks, viewer, user, changes["role"])
                team = None
                if "team_id" in changes:
                    team = await _team(session, checks, "teamId", changes["team_id"])
                    if user.role is Role.PARTNER:
                        checks.fail("teamId", "partner users belong to no team")
                checks.raise_if_any()
                if "role" in changes:
                    user.role = changes["role"]
            if "team_id" in changes:
                published.events += await _move(session, viewer, user,
                                                team.id if team else None)
            await session.flush()
            after = fields_of(user, *USER_FIELDS)
            if after != before:
                await record_audit(session, viewer, action="user.updated", entity_type="User",
                                   entity_id=user.id, before=before, after=after)
        await published.announce(events)
        return user

    return await mutate(action)


async def _check_role(session: AsyncSession, checks: Checks, viewer: Viewer, user: User,
                      role: Role | None) -> None:
    if role is None:
        checks.fail("role", "role cannot be null")
    elif role is user.role:
        return
    elif Role.PARTNER in (role, user.role):
        checks.fail("role", "staff and partner users cannot change into one another: "
                    "create a new user")
    elif user.id == viewer.user_id:
        checks.fail("role", "admins cannot change their own role")
    elif role not in MANAGING_ROLES and (team := await _managed_team(session, user.id)):
        checks.fail("role", f"the user manages the team {team.name!r}: name another "
                    "manager first")


async def _move(session: AsyncSession, viewer: Viewer, user: User, team_id: int | None
                ) -> list[EventRecord]:
    """Put ``user`` in team ``team_id`` (None: no team), in the caller's transaction.
    A manager leaving its team leaves it without a manager; the team boards of both
    teams hear of the user's open opportunities."""
    old_team_id = user.team_id
    if old_team_id == team_id:
        return []
    # Read before anything is written: the user's row changes once, at one flush.
    with session.no_autoflush:
        managed = [team for team in (await session.execute(
            select(Team).where(Team.manager_id == user.id))).scalars() if team.id != team_id]
        rows = list((await session.execute(select(OPPORTUNITIES).where(
            OPPORTUNITIES.c.owner_id == user.id, OPPORTUNITIES.c.closed_at.is_(None))
            .order_by(OPPORTUNITIES.c.id))).all())
    left = [(team, fields_of(team, *TEAM_FIELDS)) for team in managed]
    for team in managed:
        team.manager_id = None
    user.team_id = team_id
    await session.flush()
    for team, before in left:
        await record_audit(session, viewer, action="team.updated", entity_type="Team",
                           entity_id=team.id, before=before,
                           after=fields_of(team, *TEAM_FIELDS))
    return await _owner_events(session, viewer, rows, old_owner=user.id,
                               old_team=old_team_id, new_owner=user.id, new_team=team_id)


async def _owner_events(session: AsyncSession, viewer: Viewer, rows: list[Any], *,
                        old_owner: int, old_team: int | None, new_owner: int,
                        new_team: int | None) -> list[EventRecord]:
    """UPDATED events in the shape resolvers/opportunities.py writes: one per opportunity
    for its new owner and team, and one for the old team when the team changed, so
    boards filtered by either team recompute."""
    now = utcnow()
    events = []
    sides = [(new_owner, new_team)] + ([(old_owner, old_team)] if old_team != new_team else [])
    for row in rows:
        for owner_id, team_id in sides:
            events.append(await record_event(session, topic=OPPORTUNITY_TOPIC, payload={
                "kind": ChangeKind.UPDATED,
                "opportunityId": row.id,
                "accountId": row.account_id,
                "pipelineId": row.pipeline_id,
                "ownerId": owner_id,
                "ownerTeamId": team_id,
                "fromPhaseId": row.phase_id,
                "toPhaseId": row.phase_id,
                "changedById": viewer.user_id,
                "changedAt": now.isoformat(),
                "amount": str(row.amount),
                "amountDelta": str(row.amount - row.amount),
                "currency": row.currency,
            }))
    return events


async def move_user_to_team(*, viewer: Viewer, db: Database, events: EventHub, user_id: str,
                            team_id: str) -> Outcome[User]:
    published = _Changes()

    async def action() -> User:
        _admin(viewer, "move users between teams")
        async with db.transaction() as session:
            checks = Checks()
            user = await _user(session, checks, "userId", user_id)
            team = await _team(session, checks, "teamId", team_id)
            checks.raise_if_any()
            assert user is not None
            assert team is not None
            if user.role is Role.PARTNER:
                checks.fail("userId", "partner users belong to no team")
            elif user.team_id == team.id:
                checks.fail("teamId", "the user is in that team already")
            checks.raise_if_any()
            before = fields_of(user, *USER_FIELDS)
            published.events += await _move(session, viewer, user, team.id)
            await record_audit(session, viewer, action="user.moved", entity_type="User",
                               entity_id=user.id, before=before,
                               after=fields_of(user, *USER_FIELDS))
        await published.announce(events)
        return user

    return await mutate(action)


async def set_user_active(*, viewer: Viewer, db: Database, events: EventHub, user_id: str,
                          active: bool) -> Outcome[User]:
    """Deactivate (active=False) or reactivate a user. Deactivation is announced, so
    every server closes the user's open WebSockets; HTTP requests re-read the viewer."""
    published = _Changes()

    async def action() -> User:
        _admin(viewer, "deactivate and reactivate users")
        async with db.transaction() as session:
            checks = Checks()
            user = await _user(session, checks, "id", user_id)
            checks.raise_if_any()
            assert user is not None
            if not active and user.id == viewer.user_id:
                checks.fail("id", "admins cannot deactivate themselves")
            elif user.active is active:
                checks.fail("id", "the user is active already" if active
                            else "the user is deactivated already")
            checks.raise_if_any()
            before = fields_of(user, "active")
            user.active = active
            await session.flush()
            if not active:
                published.events.append(await record_event(
                    session, topic=USER_DEACTIVATED_TOPIC, payload={"userId": user.id}))
            await record_audit(session, viewer,
                               action="user.reactivated" if active else "user.deactivated",
                               entity_type="User", entity_id=user.id, before=before,
                               after=fields_of(user, "active"))
        await published.announce(events)
        return user

    return await mutate(action)


# --- teams --------------------------------------------------------------------------------


async def create_team(*, viewer: Viewer, db: Database, events: EventHub, name: str,
                      manager_id: str | None) -> Outcome[Team]:
    """A new team; a manager named here joins it (leaving the team it was in)."""
    published = _Changes()

    async def action() -> Team:
        _admin(viewer, "create teams")
        async with db.transaction() as session:
            checks = Checks()
            team_name = checks.text("name", name, max_length=200, required=True)
            await _unique_team_name(session, checks, team_name)
            manager = await _user(session, checks, "managerId", manager_id)
            if manager is not None and (problem := _manager_problem(manager, None)):
                checks.fail("managerId", problem)
            checks.raise_if_any()
            team = Team(name=team_name, manager_id=manager.id if manager else None)
            session.add(team)
            await session.flush()
            if manager is not None:
                before = fields_of(manager, *USER_FIELDS)
                published.events += await _move(session, viewer, manager, team.id)
                await record_audit(session, viewer, action="user.moved", entity_type="User",
                                   entity_id=manager.id, before=before,
                                   after=fields_of(manager, *USER_FIELDS))
            await record_audit(session, viewer, action="team.created", entity_type="Team",
                               entity_id=team.id, after=fields_of(team, *TEAM_FIELDS))
        await published.announce(events)
        return team

    return await mutate(action, on_duplicate="a team with that name exists already")


async def update_team(*, viewer: Viewer, db: Database, team_id: str, expected_version: int,
                      changes: dict[str, Any]) -> Outcome[Team]:
    """Only the fields sent change; managerId null leaves the team without a manager."""
    async def action() -> Team:
        _admin(viewer, "change teams")
        async with db.transaction() as session:
            checks = Checks()
            team = await _team(session, checks, "id", team_id)
            checks.raise_if_any()
            assert team is not None
            require_version(team.version, expected_version)
            before = fields_of(team, *TEAM_FIELDS)
            if "name" in changes:
                team_name = checks.text("name", changes["name"], max_length=200,
                                        required=True)
                await _unique_team_name(session, checks, team_name, team.id)
                if team_name is not None:
                    team.name = team_name
            if "manager_id" in changes:
                manager = await _user(session, checks, "managerId", changes["manager_id"])
                if manager is not None and (problem := _manager_problem(manager, team.id)):
                    checks.fail("managerId", problem)
                elif changes["manager_id"] is None or manager is not None:
                    team.manager_id = manager.id if manager else None
            checks.raise_if_any()
            await session.flush()
            after = fields_of(team, *TEAM_FIELDS)
            if after != before:
                await record_audit(session, viewer, action="team.updated", entity_type="Team",
                                   entity_id=team.id, before=before, after=after)
        return team

    return await mutate(action, on_duplicate="a team with that name exists already")


# --- ownership ----------------------------------------------------------------------------


async def transfer_ownership(*, viewer: Viewer, db: Database, events: EventHub,
                             from_user_id: str, to_user_id: str,
                             scopes: list[OwnershipScope]) -> Outcome[Transfer]:
    """Move what ``from`` owns in the scopes asked to ``to``, in one transaction."""
    published = _Changes()

    async def action() -> Transfer:
        _admin(viewer, "transfer ownership")
        async with db.transaction() as session:
            checks = Checks()
            source = await _user(session, checks, "fromUserId", from_user_id)
            target = await _user(session, checks, "toUserId", to_user_id)
            wanted = list(dict.fromkeys(scopes))
            if not wanted:
                checks.fail("scopes", "name at least one scope")
            if target is not None:
                if target.role not in STAFF_ROLES:
                    checks.fail("toUserId", "partner users cannot own records")
                elif not target.active:
                    checks.fail("toUserId", "the user is deactivated")
            if source is not None and target is not None and source.id == target.id:
                checks.fail("toUserId", "the records are that user's already")
            checks.raise_if_any()
            assert source is not None
            assert target is not None
            now = utcnow()
            moved: dict[OwnershipScope, int] = {}
            for scope in wanted:
                table, only = _SCOPES[scope]
                result = await session.execute(
                    update(table).where(table.c.owner_id == source.id, *only())
                    .values(owner_id=target.id, version=table.c.version + 1, updated_at=now)
                    .returning(*_RETURNED[scope]()))
                rows = list(result.all())
                moved[scope] = len(rows)
                if scope is OwnershipScope.OPPORTUNITIES:
                    published.events += await _owner_events(
                        session, viewer, rows, old_owner=source.id, old_team=source.team_id,
                        new_owner=target.id, new_team=target.team_id)
            await record_audit(
                session, viewer, action="ownership.transferred", entity_type="User",
                entity_id=source.id, before={"owner_id": source.id},
                after={"owner_id": target.id,
                       "moved": {scope.value: count for scope, count in moved.items()}})
        await published.announce(events)
        return Transfer(source, target, moved)

    return await mutate(action)


_SCOPES: dict[OwnershipScope, tuple[Any, Any]] = {
    OwnershipScope.ACCOUNTS: (ACCOUNTS, lambda: ()),
    OwnershipScope.CONTACTS: (CONTACTS, lambda: ()),
    OwnershipScope.OPPORTUNITIES: (OPPORTUNITIES, lambda: (OPPORTUNITIES.c.closed_at.is_(None),)),
    OwnershipScope.ACTIVITIES: (ACTIVITIES,
                                lambda: (ACTIVITIES.c.status == ActivityStatus.PLANNED,)),
}
_RETURNED: dict[OwnershipScope, Any] = {
    OwnershipScope.ACCOUNTS: lambda: (ACCOUNTS.c.id,),
    OwnershipScope.CONTACTS: lambda: (CONTACTS.c.id,),
    OwnershipScope.OPPORTUNITIES: lambda: (
        OPPORTUNITIES.c.id, OPPORTUNITIES.c.account_id, OPPORTUNITIES.c.pipeline_id,
        OPPORTUNITIES.c.phase_id, OPPORTUNITIES.c.amount, OPPORTUNITIES.c.currency),
    OwnershipScope.ACTIVITIES: lambda: (ACTIVITIES.c.id,),
}


# --- the audit log ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Order:
    """An orderBy entry, as the GraphQL order inputs read: newest first."""

    field: Any
    direction: Any


class _Key(enum.Enum):
    AT = "AT"
    ID = "ID"


class _Direction(enum.Enum):
    DESC = "DESC"


NEWEST_FIRST = [_Order(_Key.AT, _Direction.DESC), _Order(_Key.ID, _Direction.DESC)]


async def list_audit_entries(*, loaders: Loaders, args: PageArgs, actor_id: str | None,
                             action: str | None, entity_type: str | None,
                             entity_id: str | None, since: datetime | None,
                             until: datetime | None) -> Listing:
    if not loaders.viewer.is_admin:
        raise Forbidden("only admins read the audit log")
    entity_key = None
    if entity_id is not None:
        # An entity's global id names its type as well as its key.
        kind, entity_key = decode_any_id(entity_id)
        if entity_type is not None and entity_type != kind:
            raise BadUserInput(f"entityId names a {kind}, not a {entity_type}")
        entity_type = kind
    conditions = AuditConditions(
        actor_id=decode_id(actor_id, "User") if actor_id is not None else None,
        action=action, entity_type=entity_type, entity_id=entity_key, since=since,
        until=until)
    return await list_rows(
        loaders=loaders, statement=audit_statement(loaders.viewer, conditions),
        spec=AUDIT_FILTER, filter=None, orderable=AUDIT_ORDER, default_order=("AT",),
        order_by=NEWEST_FIRST, args=args)
