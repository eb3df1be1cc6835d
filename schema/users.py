"""Users, teams and partner organisations."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import UNSET, Private

from loaders.accounts import AccountCountByPartnerOrgLoader, AccountsByPartnerOrgLoader
from loaders.ids import encode_id
from loaders.query import PageArgs
from loaders.users import (
    PartnerOrgByIdLoader,
    PartnerOrgCountByAccountLoader,
    PartnerOrgsByAccountLoader,
    TeamByIdLoader,
    UserByIdLoader,
    UserCountByTeamLoader,
    UsersByTeamLoader,
)
from models.users import Role as RoleEnum
from resolvers import users as resolve
from schema.context import Info, viewer_of
from schema.filters import (
    BooleanFilter,
    DateTimeFilter,
    IDFilter,
    OrderDirection,
    StringFilter,
    enum_filter,
)
from schema.relay import Connection, Node, child_connection, connection
from schema.rows import RowBacked, reads, using

if TYPE_CHECKING:
    from schema.accounts import Account, AccountFilter, AccountOrder
    from schema.activities import AttainmentRow

Role = strawberry.enum(RoleEnum, name="Role", description="What a user may do.")
RoleFilter = enum_filter(Role, "RoleFilter")


@strawberry.input(description="Conditions on teams.")
class TeamFilter:
    id: IDFilter | None = UNSET
    name: StringFilter | None = UNSET
    and_: list[TeamFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[TeamFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: TeamFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.input(description="Conditions on users; combine with and, or, not.")
class UserFilter:
    id: IDFilter | None = UNSET
    email: StringFilter | None = UNSET
    name: StringFilter | None = UNSET
    role: RoleFilter | None = UNSET  # type: ignore[valid-type]
    active: BooleanFilter | None = UNSET
    team_id: IDFilter | None = UNSET
    team: TeamFilter | None = UNSET
    created_at: DateTimeFilter | None = UNSET
    and_: list[UserFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[UserFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: UserFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.enum(description="What users can be ordered by.")
class UserOrderField(Enum):
    NAME = "NAME"
    EMAIL = "EMAIL"
    CREATED_AT = "CREATED_AT"
    ID = "ID"


@strawberry.input(description="One ordering key for users.")
class UserOrder:
    field: UserOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="Conditions on partner organisations.")
class PartnerOrgFilter:
    id: IDFilter | None = UNSET
    name: StringFilter | None = UNSET
    active: BooleanFilter | None = UNSET
    allow_introspection: BooleanFilter | None = UNSET
    trusted_documents_only: BooleanFilter | None = UNSET
    created_at: DateTimeFilter | None = UNSET
    and_: list[PartnerOrgFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[PartnerOrgFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: PartnerOrgFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.enum(description="What partner organisations can be ordered by.")
class PartnerOrgOrderField(Enum):
    NAME = "NAME"
    CREATED_AT = "CREATED_AT"
    ID = "ID"


@strawberry.input(description="One ordering key for partner organisations.")
class PartnerOrgOrder:
    field: PartnerOrgOrderField
    direction: OrderDirection = OrderDirection.ASC


async def partner_orgs_of_account(
    info: Info, account_key: int, args: PageArgs, filter: PartnerOrgFilter | None,
    order_by: list[PartnerOrgOrder] | None,
) -> Connection[PartnerOrg]:
    """Account.sharedWith: the orgs it is shared with, as far as the viewer may see them."""
    return await child_connection(
        info.context.loaders, account_key, pages=PartnerOrgsByAccountLoader,
        counts=PartnerOrgCountByAccountLoader, args=args, filter=filter, order_by=order_by,
        convert=PartnerOrg.from_row)


@strawberry.type(description="A partner organisation, which sees only the accounts shared "
                 "with it.")
class PartnerOrg(Node):
    id: strawberry.ID
    name: str
    active: bool = strawberry.field(description="An inactive org's users and keys are "
                                    "refused, and their open WebSockets closed.")
    allow_introspection: bool = strawberry.field(
        description="Whether the org's users and keys may introspect the schema.")
    trusted_documents_only: bool = strawberry.field(
        description="Whether the org runs only the documents registered for it.")
    version: int = strawberry.field(description="Pass as expectedVersion when updating.")
    created_at: datetime
    updated_at: datetime
    _key: Private[int]

    @classmethod
    def from_row(cls, row: Any) -> PartnerOrg:
        return cls(id=encode_id("PartnerOrg", row.id), name=row.name, active=row.active,
                   allow_introspection=row.allow_introspection,
                   trusted_documents_only=row.trusted_documents_only,
                   version=row.version, created_at=row.created_at, updated_at=row.updated_at,
                   _key=row.id)

    @strawberry.field(description="The accounts shared with the org (staff, and the org's "
                      "own users).")
    async def accounts(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: Annotated[AccountFilter, strawberry.lazy("schema.accounts")] | None = None,
        order_by: list[Annotated[AccountOrder, strawberry.lazy("schema.accounts")]]
        | None = None,
    ) -> Connection[Annotated[Account, strawberry.lazy("schema.accounts")]]:
        # Imported here: the account types refer back to users.
        from schema import accounts as account_types

        return await child_connection(
            info.context.loaders, self._key, pages=AccountsByPartnerOrgLoader,
            counts=AccountCountByPartnerOrgLoader, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by, convert=account_types.Account.from_row)


@strawberry.type(description="A person who signs in: staff or a partner's user.")
class User(RowBacked, Node):
    id: strawberry.ID
    email: str
    name: str
    role: Role  # type: ignore[valid-type]
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    _key: Private[int]
    _team_id: Private[int | None]
    _partner_org_id: Private[int | None]

    _reads = reads(
        id=using("id")(lambda row: encode_id("User", row.id)), email="email", name="name",
        role="role",
        active="active", version="version", created_at="created_at",
        updated_at="updated_at", _key="id", _team_id="team_id",
        _partner_org_id="partner_org_id",
    )

    @strawberry.field(description="The user's sales team; null for partners.")
    async def team(self, info: Info) -> Team | None:
        if self._team_id is None:
            return None
        row = await info.context.loaders.get(TeamByIdLoader).load(self._team_id)
        return Team.from_row(row) if row else None

    @strawberry.field(description="The partner organisation of a partner user.")
    async def partner_org(self, info: Info) -> PartnerOrg | None:
        if self._partner_org_id is None:
            return None
        row = await info.context.loaders.get(PartnerOrgByIdLoader).load(self._partner_org_id)
        return PartnerOrg.from_row(row) if row else None

    @strawberry.field(description="The user's activity attainment rows for a week (an ISO "
                      "week or a date in it; this week when left out). Reps see their own "
                      "and their team's; partners none.")
    async def attainment(
        self, info: Info, week: str | None = None
    ) -> list[Annotated[AttainmentRow, strawberry.lazy("schema.activities")]] | None:
        # Imported here: the activities types refer back to User.
        from schema.activities import user_attainment_field

        return await user_attainment_field(info, self._key, week)


async def user_of(info: Info, key: int | None) -> User | None:
    """The user a field points at, through the loader (null when not visible)."""
    if key is None:
        return None
    row = await info.context.loaders.get(UserByIdLoader).load(key)
    return User.from_row(row) if row else None


@strawberry.type(description="A sales team with its manager and members.")
class Team(Node):
    id: strawberry.ID
    name: str
    version: int
    created_at: datetime
    updated_at: datetime
    _key: Private[int]
    _manager_id: Private[int | None]

    @classmethod
    def from_row(cls, row: Any) -> Team:
        return cls(id=encode_id("Team", row.id), name=row.name, version=row.version,
                   created_at=row.created_at, updated_at=row.updated_at, _key=row.id,
                   _manager_id=row.manager_id)

    @strawberry.field
    async def manager(self, info: Info) -> User | None:
        if self._manager_id is None:
            return None
        row = await info.context.loaders.get(UserByIdLoader).load(self._manager_id)
        return User.from_row(row) if row else None

    @strawberry.field(description="The team's members.")
    async def members(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: UserFilter | None = None, order_by: list[UserOrder] | None = None,
    ) -> Connection[User]:
        return await child_connection(
            info.context.loaders, self._key, pages=UsersByTeamLoader,
            counts=UserCountByTeamLoader, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by, convert=User.from_row,
        )


@strawberry.type
class UserQueries:
    @strawberry.field(description="The signed-in user.")
    async def viewer(self, info: Info) -> User:
        viewer = viewer_of(info)
        row = await info.context.loaders.get(UserByIdLoader).load(viewer.user_id)
        return User.from_row(row)

    @strawberry.field(description="Users the viewer may see, filtered and ordered.")
    async def users(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: UserFilter | None = None, order_by: list[UserOrder] | None = None,
    ) -> Connection[User]:
        viewer_of(info)
        listing = await resolve.list_users(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by,
        )
        return connection(listing.page, User.from_row, listing.total_count)

    @strawberry.field(description="Every sales team, by name (none for partners).")
    async def teams(self, info: Info) -> list[Team]:
        viewer_of(info)
        return [Team.from_row(row) for row in await resolve.list_teams(
            loaders=info.context.loaders)]
