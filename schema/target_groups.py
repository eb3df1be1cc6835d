"""Target groups: types, queries and mutations. A saved filter is kept in the API's own
shape (AccountFilter or ContactFilter, GraphQL names and values) and read back through
that input type, so a group's filter means what the same filter means in a query."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from graphql.utilities import coerce_input_value
from strawberry import UNSET, Private
from strawberry.scalars import JSON
from strawberry.types.arguments import convert_argument
from strawberry.types.base import get_object_definition, has_object_definition

from loaders.ids import decode_id, encode_id
from loaders.query import PageArgs, count
from loaders.target_groups import TargetGroupByIdLoader, group_contact_ids, members_statement
from loaders.users import UserByIdLoader
from models.target_groups import TargetGroupKind as TargetGroupKindEnum
from models.target_groups import TargetGroupVisibility as TargetGroupVisibilityEnum
from resolvers import target_groups as resolve
from resolvers.mutations import Checks
from schema import accounts as account_types  # accounts refer back to target groups
from schema.context import Info, viewer_of
from schema.errors import UserError, payload, user_errors
from schema.filters import IDFilter, OrderDirection, StringFilter, enum_filter
from schema.inputs import sent_changes
from schema.relay import Connection, Node, connection
from schema.users import User

if TYPE_CHECKING:
    from schema.accounts import AccountFilter, ContactFilter

TargetGroupKind = strawberry.enum(TargetGroupKindEnum, name="TargetGroupKind",
                                  description="Whether a group holds accounts or contacts.")
TargetGroupVisibility = strawberry.enum(
    TargetGroupVisibilityEnum, name="TargetGroupVisibility",
    description="PERSONAL: its owner alone sees it. SHARED: every staff member does.")
TargetGroupKindFilter = enum_filter(TargetGroupKind, "TargetGroupKindFilter")
TargetGroupVisibilityFilter = enum_filter(TargetGroupVisibility, "TargetGroupVisibilityFilter")

FILTER_TYPES = {TargetGroupKindEnum.ACCOUNT: "AccountFilter",
                TargetGroupKindEnum.CONTACT: "ContactFilter"}


# --- the saved filter ---------------------------------------------------------------------


def filter_to_json(info: Info, value: Any) -> Any:
    """A filter input object as the API takes it: GraphQL field names, enum names,
    Decimals and dates as strings; fields not sent are left out."""
    if value is None:
        return None
    if isinstance(value, list):
        return [filter_to_json(info, item) for item in value]
    if has_object_definition(value):
        names = info.schema.config.name_converter
        result = {}
        for field in get_object_definition(value, strict=True).fields:
            item = getattr(value, field.python_name)
            if item is not UNSET:
                result[names.from_field(field)] = filter_to_json(info, item)
        return result
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def filter_from_json(info: Info, data: dict[str, Any] | None, kind: TargetGroupKindEnum
                     ) -> Any:
    """The saved filter as its input type again, ready for the filter compiler."""
    if data is None:
        return None
    schema = info.schema
    coerced = coerce_input_value(data, schema._schema.type_map[FILTER_TYPES[kind]])
    python_type = account_types.AccountFilter if kind is TargetGroupKindEnum.ACCOUNT else (
        account_types.ContactFilter)
    return convert_argument(coerced, python_type, schema.schema_converter.scalar_registry,
                            schema.config)


def _filter_checker(info: Info, account_filter: Any, contact_filter: Any) -> Any:
    """The check a mutation runs on the filter sent: the right kind, and every field
    compiles (a bad ID, too many conditions ...) as a query would."""
    def check(checks: Checks, kind: TargetGroupKindEnum) -> None:
        wrong = contact_filter if kind is TargetGroupKindEnum.ACCOUNT else account_filter
        name = "contactFilter" if kind is TargetGroupKindEnum.ACCOUNT else "accountFilter"
        if wrong not in (None, UNSET):
            checks.fail(name, f"a {kind.value} group takes a "
                        f"{'accountFilter' if name == 'contactFilter' else 'contactFilter'}")
            return
        value = account_filter if kind is TargetGroupKindEnum.ACCOUNT else contact_filter
        if value in (None, UNSET):
            return
        field_name = "accountFilter" if kind is TargetGroupKindEnum.ACCOUNT else (
            "contactFilter")
        definition = get_object_definition(value, strict=True)
        api_names = {f.python_name: info.schema.config.name_converter.from_field(f)
                     for f in definition.fields}
        resolve.check_filter(checks, info.context.loaders.viewer, kind, value, field_name,
                             lambda python_name: api_names.get(python_name, python_name))

    return check


# --- types --------------------------------------------------------------------------------


@strawberry.type(description="Accounts or contacts for a campaign: a saved filter's matches "
                 "and static members, less exclusions.")
class TargetGroup(Node):
    id: strawberry.ID
    version: int
    name: str
    kind: TargetGroupKind  # type: ignore[valid-type]
    visibility: TargetGroupVisibility  # type: ignore[valid-type]
    description: str | None
    filter: JSON | None = strawberry.field(
        description="The saved AccountFilter or ContactFilter, as sent.")
    created_at: datetime
    updated_at: datetime
    _key: Private[int]
    _owner_id: Private[int]
    _kind: Private[TargetGroupKindEnum]

    @classmethod
    def from_row(cls, row: Any) -> TargetGroup:
        return cls(id=encode_id("TargetGroup", row.id), version=row.version, name=row.name,
                   kind=row.kind, visibility=row.visibility, description=row.description,
                   filter=row.filter, created_at=row.created_at, updated_at=row.updated_at,
                   _key=row.id, _owner_id=row.owner_id, _kind=row.kind)

    @strawberry.field
    async def owner(self, info: Info) -> User | None:
        row = await info.context.loaders.get(UserByIdLoader).load(self._owner_id)
        return User.from_row(row) if row else None

    @strawberry.field(description="The members (Account or Contact nodes, by kind) the "
                      "viewer may see, by name.")
    async def members(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
    ) -> Connection[Node]:
        saved = filter_from_json(info, self.filter, self._kind)  # type: ignore[arg-type]
        listing = await resolve.list_members(
            loaders=info.context.loaders, group=_Group(self._key, self._kind),
            saved_filter=saved, args=PageArgs(first, after, last, before))
        convert = account_types.Account.from_row if self._kind is TargetGroupKindEnum.ACCOUNT \
            else account_types.Contact.from_row
        return connection(listing.page, convert, listing.total_count)  # type: ignore[arg-type]

    @strawberry.field(description="How many members the group has now.")
    async def member_count(self, info: Info) -> int:
        saved = filter_from_json(info, self.filter, self._kind)  # type: ignore[arg-type]
        return await count(info.context.db, members_statement(
            self._key, self._kind, info.context.loaders.viewer, saved))

    @strawberry.field(description="How many contacts the group stands for in a campaign (an "
                      "ACCOUNT group: its accounts' contacts).")
    async def contact_count(self, info: Info) -> int:
        saved = filter_from_json(info, self.filter, self._kind)  # type: ignore[arg-type]
        ids = group_contact_ids(self._key, self._kind, info.context.loaders.viewer, saved)
        return await count(info.context.db, ids)


@dataclasses.dataclass(frozen=True)
class _Group:
    id: int
    kind: TargetGroupKindEnum


@strawberry.input(description="Conditions on target groups.")
class TargetGroupFilter:
    id: IDFilter | None = UNSET
    name: StringFilter | None = UNSET
    kind: TargetGroupKindFilter | None = UNSET  # type: ignore[valid-type]
    visibility: TargetGroupVisibilityFilter | None = UNSET  # type: ignore[valid-type]
    owner_id: IDFilter | None = UNSET


@strawberry.enum(description="What target groups can be ordered by.")
class TargetGroupOrderField(Enum):
    NAME = "NAME"
    CREATED_AT = "CREATED_AT"
    ID = "ID"


@strawberry.input
class TargetGroupOrder:
    field: TargetGroupOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.type
class TargetGroupQueries:
    @strawberry.field(description="Target groups the viewer may see: SHARED ones and its "
                      "own PERSONAL ones.")
    async def target_groups(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: TargetGroupFilter | None = None, order_by: list[TargetGroupOrder] | None = None,
    ) -> Connection[TargetGroup]:
        viewer_of(info)
        listing = await resolve.list_target_groups(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by)
        return connection(listing.page, TargetGroup.from_row, listing.total_count)

    @strawberry.field
    async def target_group(self, info: Info, id: strawberry.ID) -> TargetGroup | None:
        viewer_of(info)
        row = await info.context.loaders.get(TargetGroupByIdLoader).load(
            decode_id(id, "TargetGroup"))
        return TargetGroup.from_row(row) if row else None


# --- mutations ----------------------------------------------------------------------------


@strawberry.input(description="A group of accounts (accountFilter) or contacts "
                  "(contactFilter); without a filter it holds its static members only.")
class CreateTargetGroupInput:
    name: str
    kind: TargetGroupKind  # type: ignore[valid-type]
    visibility: TargetGroupVisibility = TargetGroupVisibilityEnum.PERSONAL  # type: ignore[valid-type]
    description: str | None = None
    account_filter: Annotated[AccountFilter, strawberry.lazy("schema.accounts")] | None = None
    contact_filter: Annotated[ContactFilter, strawberry.lazy("schema.accounts")] | None = None


@strawberry.input(description="Only the fields sent are changed; a null filter clears it.")
class UpdateTargetGroupInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET
    visibility: TargetGroupVisibility | None = UNSET  # type: ignore[valid-type]
    description: str | None = UNSET
    account_filter: Annotated[AccountFilter, strawberry.lazy("schema.accounts")] | None = UNSET
    contact_filter: Annotated[ContactFilter, strawberry.lazy("schema.accounts")] | None = UNSET


@strawberry.input
class DeleteTargetGroupInput:
    id: strawberry.ID
    expected_version: int


@strawberry.input(description="Accounts or contacts, by the group's kind.")
class TargetGroupMembersInput:
    id: strawberry.ID
    member_ids: list[strawberry.ID]


@strawberry.type
class TargetGroupPayload:
    target_group: TargetGroup | None
    user_errors: list[UserError]


@strawberry.type
class DeleteTargetGroupPayload:
    deleted_target_group_id: strawberry.ID | None
    user_errors: list[UserError]


def _payload(outcome: Any) -> TargetGroupPayload:
    return payload(TargetGroupPayload, "target_group", TargetGroup.from_row, outcome)


@strawberry.type
class TargetGroupMutations:
    @strawberry.mutation(description="A new target group; its filter is checked now.")
    async def create_target_group(self, info: Info, input: CreateTargetGroupInput
                                  ) -> TargetGroupPayload:
        saved = input.account_filter if input.kind is TargetGroupKindEnum.ACCOUNT else (
            input.contact_filter)
        return _payload(await resolve.create_target_group(
            viewer=viewer_of(info), db=info.context.db, name=input.name, kind=input.kind,
            visibility=input.visibility, description=input.description,
            saved_filter=filter_to_json(info, saved),
            check=_filter_checker(info, input.account_filter, input.contact_filter)))

    @strawberry.mutation(description="Rename, re-describe, share or unshare, or change the "
                         "filter of a target group.")
    async def update_target_group(self, info: Info, input: UpdateTargetGroupInput
                                  ) -> TargetGroupPayload:
        changes = sent_changes(input)
        for name in ("account_filter", "contact_filter"):
            changes.pop(name, None)
        filters = {kind: filter_to_json(info, value) for kind, value in (
            (TargetGroupKindEnum.ACCOUNT, input.account_filter),
            (TargetGroupKindEnum.CONTACT, input.contact_filter)) if value is not UNSET}
        if filters:
            changes["filters"] = filters
        return _payload(await resolve.update_target_group(
            viewer=viewer_of(info), db=info.context.db, group_id=input.id,
            expected_version=input.expected_version, changes=changes,
            check=_filter_checker(
                info, None if input.account_filter is UNSET else input.account_filter,
                None if input.contact_filter is UNSET else input.contact_filter)))

    @strawberry.mutation
    async def delete_target_group(self, info: Info, input: DeleteTargetGroupInput
                                  ) -> DeleteTargetGroupPayload:
        outcome = await resolve.delete_target_group(
            viewer=viewer_of(info), db=info.context.db, group_id=input.id,
            expected_version=input.expected_version)
        return DeleteTargetGroupPayload(
            deleted_target_group_id=input.id if outcome.value is not None else None,
            user_errors=user_errors(outcome.errors))

    @strawberry.mutation(description="Add static members (an exclusion of them is lifted).")
    async def add_target_group_members(self, info: Info, input: TargetGroupMembersInput
                                       ) -> TargetGroupPayload:
        return _payload(await resolve.change_entries(
            viewer=viewer_of(info), db=info.context.db, group_id=input.id,
            member_ids=list(input.member_ids), excluded=False))

    @strawberry.mutation(description="Exclude accounts or contacts, whether the filter or the "
                         "static members hold them.")
    async def exclude_target_group_members(self, info: Info, input: TargetGroupMembersInput
                                           ) -> TargetGroupPayload:
        return _payload(await resolve.change_entries(
            viewer=viewer_of(info), db=info.context.db, group_id=input.id,
            member_ids=list(input.member_ids), excluded=True))

    @strawberry.mutation(description="Remove static members or exclusions.")
    async def remove_target_group_members(self, info: Info, input: TargetGroupMembersInput
                                          ) -> TargetGroupPayload:
        return _payload(await resolve.change_entries(
            viewer=viewer_of(info), db=info.context.db, group_id=input.id,
            member_ids=list(input.member_ids), excluded=None))
