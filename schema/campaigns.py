"""Campaigns and their members: types, stats, queries and mutations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import UNSET, Private

from loaders.accounts import ContactByIdLoader
from loaders.campaigns import (
    CampaignByIdLoader,
    CampaignFiguresLoader,
    MemberCountByCampaignLoader,
    MembersByCampaignLoader,
)
from loaders.errors import BadUserInput
from loaders.ids import decode_id, encode_id
from loaders.query import PageArgs
from loaders.target_groups import TargetGroupByIdLoader
from models.campaigns import CampaignStatus as CampaignStatusEnum
from models.campaigns import CampaignType as CampaignTypeEnum
from models.campaigns import MemberStatus as MemberStatusEnum
from resolvers import campaigns as resolve
from schema import accounts as account_types  # accounts refer back to campaigns
from schema.context import Info, viewer_of
from schema.errors import UserError, payload, user_errors
from schema.filters import (
    DateFilter,
    DateTimeFilter,
    IDFilter,
    OrderDirection,
    StringFilter,
    enum_filter,
)
from schema.inputs import sent_changes
from schema.relay import Connection, Node, child_connection, connection
from schema.target_groups import filter_from_json
from schema.users import User, user_of

if TYPE_CHECKING:
    from schema.accounts import Contact

CampaignType = strawberry.enum(CampaignTypeEnum, name="CampaignType")
CampaignStatus = strawberry.enum(
    CampaignStatusEnum, name="CampaignStatus",
    description="Forward only (PLANNED, ACTIVE, COMPLETED); an open campaign may be "
    "CANCELLED.")
CampaignMemberStatus = strawberry.enum(
    MemberStatusEnum, name="CampaignMemberStatus",
    description="By campaign type. EVENT: INVITED, REGISTERED, WAITLISTED, ATTENDED, "
    "NO_SHOW, DECLINED. CALL: TO_CALL, CALLED, REACHED, NOT_REACHED. EMAIL: SENT, OPENED, "
    "BOUNCED, UNSUBSCRIBED. PROJECT: INVOLVED, RESPONDED.")
CampaignTypeFilter = enum_filter(CampaignType, "CampaignTypeFilter")
CampaignStatusFilter = enum_filter(CampaignStatus, "CampaignStatusFilter")
CampaignMemberStatusFilter = enum_filter(CampaignMemberStatus, "CampaignMemberStatusFilter")


@strawberry.type(description="How many members have one status.")
class StatusCount:
    status: CampaignMemberStatus  # type: ignore[valid-type]
    count: int


@strawberry.type(description="A campaign's results, computed in SQL. Amounts in the "
                 "campaign's currency.")
class CampaignStats:
    members_by_status: list[StatusCount]
    member_count: int
    response_count: int = strawberry.field(
        description="Members who responded (EVENT: registered, waitlisted, attended, no-show "
        "or declined; EMAIL: opened; CALL: reached; PROJECT: responded).")
    response_rate: float | None = strawberry.field(description="responses / members.")
    sourced_opportunity_count: int
    sourced_opportunity_amount: Decimal
    won_amount: Decimal
    cost_per_response: Decimal | None = strawberry.field(description="actualCost / responses.")
    roi: float | None = strawberry.field(description="(wonAmount - actualCost) / actualCost.")


@strawberry.type(description="An event, email, call campaign or customer project.")
class Campaign(Node):
    id: strawberry.ID
    version: int
    name: str
    type: CampaignType  # type: ignore[valid-type]
    status: CampaignStatus  # type: ignore[valid-type]
    starts_on: date | None
    ends_on: date | None
    currency: str
    budget: Decimal | None
    actual_cost: Decimal | None
    expected_revenue: Decimal | None
    description: str | None
    event_place: str | None
    event_starts_at: datetime | None
    capacity: int | None = strawberry.field(description="Places at an event; null: no limit.")
    created_at: datetime
    updated_at: datetime
    _row: Private[Any]

    @classmethod
    def from_row(cls, row: Any) -> Campaign:
        return cls(id=encode_id("Campaign", row.id), version=row.version, name=row.name,
                   type=row.type, status=row.status, starts_on=row.starts_on,
                   ends_on=row.ends_on, currency=row.currency, budget=row.budget,
                   actual_cost=row.actual_cost, expected_revenue=row.expected_revenue,
                   description=row.description, event_place=row.event_place,
                   event_starts_at=row.event_starts_at, capacity=row.capacity,
                   created_at=row.created_at, updated_at=row.updated_at, _row=row)

    @strawberry.field
    async def owner(self, info: Info) -> User | None:
        return await user_of(info, self._row.owner_id)

    @strawberry.field(description="The campaign's members, filtered by status and agent.")
    async def members(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: CampaignMemberFilter | None = None,
        order_by: list[CampaignMemberOrder] | None = None,
    ) -> Connection[CampaignMember]:
        return await child_connection(
            info.context.loaders, self._row.id, pages=MembersByCampaignLoader,
            counts=MemberCountByCampaignLoader, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by, convert=CampaignMember.from_row)

    @strawberry.field
    async def stats(self, info: Info) -> CampaignStats:
        figures = await info.context.loaders.get(CampaignFiguresLoader).load(self._row.id)
        found = resolve.stats(self._row, figures)
        return CampaignStats(
            members_by_status=[StatusCount(status=s, count=n) for s, n in found.by_status],
            member_count=found.member_count, response_count=found.response_count,
            response_rate=found.response_rate,
            sourced_opportunity_count=found.sourced_opportunity_count,
            sourced_opportunity_amount=found.sourced_opportunity_amount,
            won_amount=found.won_amount, cost_per_response=found.cost_per_response,
            roi=found.roi)


@strawberry.type(description="A contact in a campaign.")
class CampaignMember(Node):
    id: strawberry.ID
    version: int
    status: CampaignMemberStatus  # type: ignore[valid-type]
    responded_at: datetime | None
    notes: str | None
    created_at: datetime
    _row: Private[Any]

    @classmethod
    def from_row(cls, row: Any) -> CampaignMember:
        return cls(id=encode_id("CampaignMember", row.id), version=row.version,
                   status=row.status, responded_at=row.responded_at, notes=row.notes,
                   created_at=row.created_at, _row=row)

    @strawberry.field
    async def contact(self, info: Info
                      ) -> Annotated[Contact, strawberry.lazy("schema.accounts")] | None:
        row = await info.context.loaders.get(ContactByIdLoader).load(self._row.contact_id)
        return account_types.Contact.from_row(row) if row else None

    @strawberry.field(description="Who calls the member, in a CALL campaign.")
    async def agent(self, info: Info) -> User | None:
        return await user_of(info, self._row.agent_id)

    @strawberry.field
    async def campaign(self, info: Info) -> Campaign | None:
        return await campaign_of(info, self._row.campaign_id)


async def campaigns_of(info: Info, keys: list[int]) -> list[Campaign]:
    rows = await info.context.loaders.get(CampaignByIdLoader).load_many(keys)
    return [Campaign.from_row(row) for row in rows if row is not None]


async def campaign_of(info: Info, key: int | None) -> Campaign | None:
    if key is None:
        return None
    row = await info.context.loaders.get(CampaignByIdLoader).load(key)
    return Campaign.from_row(row) if row else None


@strawberry.input(description="Conditions on campaign members.")
class CampaignMemberFilter:
    status: CampaignMemberStatusFilter | None = UNSET  # type: ignore[valid-type]
    agent_id: IDFilter | None = UNSET
    contact_id: IDFilter | None = UNSET
    responded_at: DateTimeFilter | None = UNSET
    and_: list[CampaignMemberFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[CampaignMemberFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: CampaignMemberFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.enum(description="What campaign members can be ordered by.")
class CampaignMemberOrderField(Enum):
    CREATED_AT = "CREATED_AT"
    RESPONDED_AT = "RESPONDED_AT"
    UPDATED_AT = "UPDATED_AT"
    ID = "ID"


@strawberry.input
class CampaignMemberOrder:
    field: CampaignMemberOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="Conditions on campaigns; combine with and, or, not.")
class CampaignFilter:
    id: IDFilter | None = UNSET
    name: StringFilter | None = UNSET
    type: CampaignTypeFilter | None = UNSET  # type: ignore[valid-type]
    status: CampaignStatusFilter | None = UNSET  # type: ignore[valid-type]
    owner_id: IDFilter | None = UNSET
    starts_on: DateFilter | None = UNSET
    ends_on: DateFilter | None = UNSET
    created_at: DateTimeFilter | None = UNSET
    and_: list[CampaignFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[CampaignFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: CampaignFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.enum(description="What campaigns can be ordered by.")
class CampaignOrderField(Enum):
    NAME = "NAME"
    STARTS_ON = "STARTS_ON"
    CREATED_AT = "CREATED_AT"
    ID = "ID"


@strawberry.input
class CampaignOrder:
    field: CampaignOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.type
class CampaignQueries:
    @strawberry.field(description="Campaigns (none for partners), filtered and ordered.")
    async def campaigns(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: CampaignFilter | None = None, order_by: list[CampaignOrder] | None = None,
    ) -> Connection[Campaign]:
        viewer_of(info)
        listing = await resolve.list_campaigns(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by)
        return connection(listing.page, Campaign.from_row, listing.total_count)

    @strawberry.field
    async def campaign(self, info: Info, id: strawberry.ID) -> Campaign | None:
        viewer_of(info)
        return await campaign_of(info, decode_id(id, "Campaign"))


# --- mutations ----------------------------------------------------------------------------


@strawberry.input
class CreateCampaignInput:
    name: str
    type: CampaignType  # type: ignore[valid-type]
    starts_on: date | None = None
    ends_on: date | None = None
    currency: str = "EUR"
    budget: Decimal | None = None
    actual_cost: Decimal | None = None
    expected_revenue: Decimal | None = None
    description: str | None = None
    event_place: str | None = None
    event_starts_at: datetime | None = None
    capacity: int | None = None
    owner_id: strawberry.ID | None = strawberry.field(default=None,
                                                      description="Defaults to the viewer.")


@strawberry.input(description="Only the fields sent are changed; null clears a field.")
class UpdateCampaignInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET
    status: CampaignStatus | None = UNSET  # type: ignore[valid-type]
    starts_on: date | None = UNSET
    ends_on: date | None = UNSET
    currency: str | None = UNSET
    budget: Decimal | None = UNSET
    actual_cost: Decimal | None = UNSET
    expected_revenue: Decimal | None = UNSET
    description: str | None = UNSET
    event_place: str | None = UNSET
    event_starts_at: datetime | None = UNSET
    capacity: int | None = UNSET


@strawberry.input
class AddCampaignMembersInput:
    campaign_id: strawberry.ID
    contact_ids: list[strawberry.ID]


@strawberry.input
class AddTargetGroupToCampaignInput:
    campaign_id: strawberry.ID
    target_group_id: strawberry.ID


@strawberry.input(description="A status of the campaign's type; at an event a registration "
                  "beyond capacity is WAITLISTED.")
class SetCampaignMemberStatusInput:
    id: strawberry.ID
    status: CampaignMemberStatus  # type: ignore[valid-type]
    expected_version: int | None = None
    notes: str | None = None


@strawberry.input(description="Deal the members to agents round-robin.")
class AssignCampaignAgentsInput:
    campaign_id: strawberry.ID
    agent_ids: list[strawberry.ID]
    only_unassigned: bool = True


@strawberry.type
class CampaignPayload:
    campaign: Campaign | None
    user_errors: list[UserError]


@strawberry.type(description="Contacts added, and those left out: members already, or "
                 "without consent to the campaign's channel.")
class AddCampaignMembersPayload:
    campaign: Campaign | None
    added: int
    skipped_existing: int
    skipped_no_consent: int
    user_errors: list[UserError]


@strawberry.type
class CampaignMemberPayload:
    campaign_member: CampaignMember | None
    user_errors: list[UserError]


def _campaign_payload(outcome: Any) -> CampaignPayload:
    return payload(CampaignPayload, "campaign", Campaign.from_row, outcome)


def _added(outcome: Any) -> AddCampaignMembersPayload:
    found = outcome.value
    return AddCampaignMembersPayload(
        campaign=Campaign.from_row(found.campaign) if found else None,
        added=found.added if found else 0,
        skipped_existing=found.skipped_existing if found else 0,
        skipped_no_consent=found.skipped_no_consent if found else 0,
        user_errors=user_errors(outcome.errors))


@strawberry.type
class CampaignMutations:
    @strawberry.mutation(description="A new campaign, PLANNED.")
    async def create_campaign(self, info: Info, input: CreateCampaignInput) -> CampaignPayload:
        values = {key: getattr(input, key) for key in (
            "name", "starts_on", "ends_on", "currency", "budget", "actual_cost",
            "expected_revenue", "description", "event_place", "event_starts_at", "capacity")}
        return _campaign_payload(await resolve.create_campaign(
            viewer=viewer_of(info), db=info.context.db, kind=input.type, values=values,
            owner_gid=input.owner_id))

    @strawberry.mutation(description="Change a campaign's fields or move its status on.")
    async def update_campaign(self, info: Info, input: UpdateCampaignInput) -> CampaignPayload:
        return _campaign_payload(await resolve.update_campaign(
            viewer=viewer_of(info), db=info.context.db, campaign_id=input.id,
            expected_version=input.expected_version, changes=sent_changes(input)))

    @strawberry.mutation(description="Add contacts (those consenting to the channel).")
    async def add_campaign_members(self, info: Info, input: AddCampaignMembersInput
                                   ) -> AddCampaignMembersPayload:
        return _added(await resolve.add_campaign_members(
            viewer=viewer_of(info), db=info.context.db, campaign_id=input.campaign_id,
            contact_ids=list(input.contact_ids)))

    @strawberry.mutation(description="Add a target group's contacts (an ACCOUNT group: its "
                         "accounts' contacts) that consent to the campaign's channel: email "
                         "for EMAIL, phone with a number for CALL. Set-based.")
    async def add_target_group_to_campaign(self, info: Info,
                                           input: AddTargetGroupToCampaignInput
                                           ) -> AddCampaignMembersPayload:
        viewer = viewer_of(info)
        try:
            key = decode_id(input.target_group_id, "TargetGroup")
        except BadUserInput:
            key = None  # the resolver names the field in its userErrors
        group = await info.context.loaders.get(TargetGroupByIdLoader).load(key) \
            if key is not None else None
        saved = filter_from_json(info, group.filter, group.kind) if group else None
        return _added(await resolve.add_target_group(
            viewer=viewer, db=info.context.db, campaign_id=input.campaign_id,
            group_id=input.target_group_id, saved_filter=saved))

    @strawberry.mutation(description="Set a member's status.")
    async def set_campaign_member_status(self, info: Info, input: SetCampaignMemberStatusInput
                                         ) -> CampaignMemberPayload:
        return payload(CampaignMemberPayload, "campaign_member", CampaignMember.from_row,
                       await resolve.set_member_status(
                           viewer=viewer_of(info), db=info.context.db, member_id=input.id,
                           status=input.status, notes=input.notes,
                           expected_version=input.expected_version))

    @strawberry.mutation(description="Deal a CALL campaign's members to agents round-robin.")
    async def assign_campaign_agents(self, info: Info, input: AssignCampaignAgentsInput
                                     ) -> CampaignPayload:
        return _campaign_payload(await resolve.assign_agents(
            viewer=viewer_of(info), db=info.context.db, campaign_id=input.campaign_id,
            agent_ids=list(input.agent_ids), only_unassigned=input.only_unassigned))
