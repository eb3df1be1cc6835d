"""Users, teams, ownership transfers and the audit log: administration through the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import UNSET, Private
from strawberry.scalars import JSON

from loaders.ids import encode_id
from loaders.query import PageArgs
from resolvers import administration as resolve
from schema.context import Info, viewer_of
from schema.errors import UserError, payload, user_errors
from schema.inputs import sent_changes
from schema.relay import Connection, connection
from schema.users import Role, Team, User, user_of

OwnershipScope = strawberry.enum(
    resolve.OwnershipScope, name="OwnershipScope",
    description="What transferOwnership moves: all accounts, all contacts, the open "
    "opportunities, the planned activities.")


@strawberry.type(description="One change to the configuration or to ownership: who made "
                 "it, when, and the fields it concerned before and after.")
class AuditEntry:
    id: strawberry.ID
    at: datetime
    action: str = strawberry.field(description='"<entity>.<verb>", e.g. "user.created", '
                                   '"team.updated", "ownership.transferred".')
    entity_type: str = strawberry.field(description="The GraphQL type of what changed.")
    entity_id: strawberry.ID | None = strawberry.field(
        description="The global ID of what changed.")
    before: JSON | None = strawberry.field(
        description="The fields concerned before the change; null for a creation.")
    after: JSON | None = strawberry.field(description="The fields concerned after it.")
    _actor_id: Private[int | None]

    @classmethod
    def from_row(cls, row: Any) -> AuditEntry:
        return cls(
            id=encode_id("AuditEntry", row.id), at=row.created_at, action=row.action,
            entity_type=row.entity_type,
            entity_id=encode_id(row.entity_type, row.entity_id)
            if row.entity_id is not None else None,
            before=row.before, after=row.after, _actor_id=row.actor_id)

    @strawberry.field(description="Who made the change.")
    async def actor(self, info: Info) -> User | None:
        return await user_of(info, self._actor_id)


@strawberry.input(description="Conditions on audit entries; all given must hold.")
class AuditLogFilter:
    actor_id: strawberry.ID | None = None
    action: str | None = None
    entity_type: str | None = None
    entity_id: strawberry.ID | None = None
    from_: datetime | None = strawberry.field(name="from", default=None,
                                              description="At or after this time.")
    to: datetime | None = strawberry.field(default=None, description="Before this time.")


@strawberry.type(description="What one transfer moved, per scope; null for a scope not "
                 "asked for.")
class OwnershipTransfer:
    from_user: User
    to_user: User
    accounts: int | None
    contacts: int | None
    opportunities: int | None
    activities: int | None

    @classmethod
    def from_transfer(cls, transfer: resolve.Transfer) -> OwnershipTransfer:
        moved = transfer.moved
        scope = resolve.OwnershipScope
        return cls(from_user=User.from_row(transfer.from_user),
                   to_user=User.from_row(transfer.to_user),
                   accounts=moved.get(scope.ACCOUNTS), contacts=moved.get(scope.CONTACTS),
                   opportunities=moved.get(scope.OPPORTUNITIES),
                   activities=moved.get(scope.ACTIVITIES))


@strawberry.input
class CreateUserInput:
    email: str = strawberry.field(description="Unique, case-insensitively; stored "
                                  "lower-cased.")
    name: str
    role: Role  # type: ignore[valid-type]
    team_id: strawberry.ID | None = None
    partner_org_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required for, and only for, role PARTNER.")


@strawberry.input(description="Only the fields sent are changed.")
class UpdateUserInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET
    role: Role | None = UNSET  # type: ignore[valid-type]
    team_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="null takes the user out of its team; a manager who "
        "leaves its team leaves it without a manager.")


@strawberry.input
class UserIdInput:
    id: strawberry.ID


@strawberry.input
class MoveUserToTeamInput:
    user_id: strawberry.ID
    team_id: strawberry.ID


@strawberry.input
class CreateTeamInput:
    name: str
    manager_id: strawberry.ID | None = strawberry.field(
        default=None, description="An active MANAGER or ADMIN, who joins the team.")


@strawberry.input(description="Only the fields sent are changed.")
class UpdateTeamInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET
    manager_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="An active MANAGER or ADMIN who is a member of the team; "
        "null for none.")


@strawberry.input
class TransferOwnershipInput:
    from_user_id: strawberry.ID
    to_user_id: strawberry.ID = strawberry.field(description="An active staff user.")
    scopes: list[OwnershipScope]  # type: ignore[valid-type]


@strawberry.type
class UserPayload:
    user: User | None
    user_errors: list[UserError]


@strawberry.type
class TeamPayload:
    team: Team | None
    user_errors: list[UserError]


@strawberry.type
class TransferOwnershipPayload:
    transfer: OwnershipTransfer | None
    user_errors: list[UserError]


def _user_payload(outcome: Any) -> UserPayload:
    return payload(UserPayload, "user", User.from_row, outcome)


def _team_payload(outcome: Any) -> TeamPayload:
    return payload(TeamPayload, "team", Team.from_row, outcome)


@strawberry.type
class AdministrationQueries:
    @strawberry.field(description="Admins: the audit log, newest first.")
    async def audit_log(
        self, info: Info, filter: AuditLogFilter | None = None, first: int | None = None,
        after: str | None = None,
    ) -> Connection[AuditEntry]:
        viewer_of(info)
        f = filter or AuditLogFilter()
        listing = await resolve.list_audit_entries(
            loaders=info.context.loaders, args=PageArgs(first, after), actor_id=f.actor_id,
            action=f.action, entity_type=f.entity_type, entity_id=f.entity_id,
            since=f.from_, until=f.to)
        return connection(listing.page, AuditEntry.from_row, listing.total_count)


@strawberry.type
class AdministrationMutations:
    @strawberry.mutation(description="Admins: a new user.")
    async def create_user(self, info: Info, input: CreateUserInput) -> UserPayload:
        return _user_payload(await resolve.create_user(
            viewer=viewer_of(info), db=info.context.db, email=input.email, name=input.name,
            role=input.role, team_id=input.team_id, partner_org_id=input.partner_org_id))

    @strawberry.mutation(description="Admins: rename a user, change its role or team.")
    async def update_user(self, info: Info, input: UpdateUserInput) -> UserPayload:
        return _user_payload(await resolve.update_user(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            user_id=input.id, expected_version=input.expected_version,
            changes=sent_changes(input)))

    @strawberry.mutation(description="Admins: the user's tokens and open WebSockets are "
                         "refused from now on; what it owns keeps its owner.")
    async def deactivate_user(self, info: Info, input: UserIdInput) -> UserPayload:
        return _user_payload(await resolve.set_user_active(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            user_id=input.id, active=False))

    @strawberry.mutation(description="Admins: let a deactivated user in again.")
    async def reactivate_user(self, info: Info, input: UserIdInput) -> UserPayload:
        return _user_payload(await resolve.set_user_active(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            user_id=input.id, active=True))

    @strawberry.mutation(description="Admins: move a user to another team; a manager "
                         "leaves its old team without a manager.")
    async def move_user_to_team(self, info: Info, input: MoveUserToTeamInput) -> UserPayload:
        return _user_payload(await resolve.move_user_to_team(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            user_id=input.user_id, team_id=input.team_id))

    @strawberry.mutation(description="Admins: a new team.")
    async def create_team(self, info: Info, input: CreateTeamInput) -> TeamPayload:
        return _team_payload(await resolve.create_team(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            name=input.name, manager_id=input.manager_id))

    @strawberry.mutation(description="Admins: rename a team or name its manager.")
    async def update_team(self, info: Info, input: UpdateTeamInput) -> TeamPayload:
        return _team_payload(await resolve.update_team(
            viewer=viewer_of(info), db=info.context.db, team_id=input.id,
            expected_version=input.expected_version, changes=sent_changes(input)))

    @strawberry.mutation(description="Admins: move what one user owns to another, in one "
                         "transaction; for when a rep leaves.")
    async def transfer_ownership(self, info: Info, input: TransferOwnershipInput
                                 ) -> TransferOwnershipPayload:
        outcome = await resolve.transfer_ownership(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            from_user_id=input.from_user_id, to_user_id=input.to_user_id,
            scopes=list(input.scopes))
        return TransferOwnershipPayload(
            transfer=OwnershipTransfer.from_transfer(outcome.value)
            if outcome.value is not None else None,
            user_errors=user_errors(outcome.errors))
