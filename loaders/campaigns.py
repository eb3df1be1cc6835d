"""Campaigns and their members: read policy, filters, ordering, loaders and the stats
figures, aggregated in SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select, true, type_coerce

from loaders.base import ChildCountLoader, ChildPageLoader, Loader, RowByIdLoader
from loaders.opportunities import OPPORTUNITIES, PHASES
from loaders.query import FilterSpec, Scalar, Sortable
from models.base import Money
from models.campaigns import Campaign, CampaignMember, CampaignType, MemberStatus
from models.opportunities import PhaseOutcome
from models.users import Role, Viewer

CAMPAIGNS = Campaign.__table__
CAMPAIGN_MEMBERS = CampaignMember.__table__

# What counts as a response, per campaign type.
RESPONSES: dict[CampaignType, frozenset[MemberStatus]] = {
    CampaignType.EVENT: frozenset({MemberStatus.REGISTERED, MemberStatus.WAITLISTED,
                                   MemberStatus.ATTENDED, MemberStatus.NO_SHOW,
                                   MemberStatus.DECLINED}),
    CampaignType.EMAIL: frozenset({MemberStatus.OPENED}),
    CampaignType.CALL: frozenset({MemberStatus.REACHED}),
    CampaignType.PROJECT: frozenset({MemberStatus.RESPONDED}),
}


def visible_campaigns(viewer: Viewer) -> ColumnElement[bool]:
    """Campaigns are the organisation's marketing: staff read them all, partners none."""
    return false() if viewer.role is Role.PARTNER else true()


def visible_members(viewer: Viewer) -> ColumnElement[bool]:
    return false() if viewer.role is Role.PARTNER else true()


CAMPAIGN_FILTER = FilterSpec(
    fields={
        "id": Scalar(CAMPAIGNS.c.id, id_type="Campaign"),
        "name": Scalar(CAMPAIGNS.c.name),
        "type": Scalar(CAMPAIGNS.c.type),
        "status": Scalar(CAMPAIGNS.c.status),
        "owner_id": Scalar(CAMPAIGNS.c.owner_id, id_type="User"),
        "starts_on": Scalar(CAMPAIGNS.c.starts_on),
        "ends_on": Scalar(CAMPAIGNS.c.ends_on),
        "created_at": Scalar(CAMPAIGNS.c.created_at),
    },
    visibility=visible_campaigns,
)

CAMPAIGN_ORDER = {
    "NAME": Sortable(CAMPAIGNS.c.name),
    "STARTS_ON": Sortable(CAMPAIGNS.c.starts_on, nullable=True),
    "CREATED_AT": Sortable(CAMPAIGNS.c.created_at),
}

CAMPAIGN_MEMBER_FILTER = FilterSpec(
    fields={
        "id": Scalar(CAMPAIGN_MEMBERS.c.id, id_type="CampaignMember"),
        "status": Scalar(CAMPAIGN_MEMBERS.c.status),
        "agent_id": Scalar(CAMPAIGN_MEMBERS.c.agent_id, id_type="User"),
        "contact_id": Scalar(CAMPAIGN_MEMBERS.c.contact_id, id_type="Contact"),
        "responded_at": Scalar(CAMPAIGN_MEMBERS.c.responded_at),
        "created_at": Scalar(CAMPAIGN_MEMBERS.c.created_at),
    },
    visibility=visible_members,
)

CAMPAIGN_MEMBER_ORDER = {
    "CREATED_AT": Sortable(CAMPAIGN_MEMBERS.c.created_at),
    "RESPONDED_AT": Sortable(CAMPAIGN_MEMBERS.c.responded_at, nullable=True),
    "UPDATED_AT": Sortable(CAMPAIGN_MEMBERS.c.updated_at),
}


def campaigns_statement(viewer: Viewer) -> Select[Any]:
    return select(CAMPAIGNS).where(visible_campaigns(viewer))


def members_statement(viewer: Viewer) -> Select[Any]:
    return select(CAMPAIGN_MEMBERS).where(visible_members(viewer))


class CampaignByIdLoader(RowByIdLoader):
    table = CAMPAIGNS
    visibility = staticmethod(visible_campaigns)


class CampaignMemberByIdLoader(RowByIdLoader):
    table = CAMPAIGN_MEMBERS
    visibility = staticmethod(visible_members)


class MembersByCampaignLoader(ChildPageLoader):
    parent_column = CAMPAIGN_MEMBERS.c.campaign_id
    filter_spec = CAMPAIGN_MEMBER_FILTER
    orderable = CAMPAIGN_MEMBER_ORDER
    default_order = ("CREATED_AT",)

    def base_statement(self) -> Select[Any]:
        return members_statement(self.viewer)


class MemberCountByCampaignLoader(ChildCountLoader):
    parent_column = CAMPAIGN_MEMBERS.c.campaign_id
    filter_spec = CAMPAIGN_MEMBER_FILTER

    def base_statement(self) -> Select[Any]:
        return members_statement(self.viewer)


class MembershipsByContactLoader(Loader):
    """Each contact's campaign memberships, newest first."""

    async def batch_load_fn(self, keys: list[int]) -> list[list[Any]]:
        statement = (select(CAMPAIGN_MEMBERS)
                     .where(CAMPAIGN_MEMBERS.c.contact_id.in_(keys),
                            visible_members(self.viewer))
                     .order_by(CAMPAIGN_MEMBERS.c.contact_id,
                               CAMPAIGN_MEMBERS.c.created_at.desc(),
                               CAMPAIGN_MEMBERS.c.id.desc()))
        grouped: dict[int, list[Any]] = {}
        async with self.db.read() as connection:
            for row in await connection.execute(statement):
                grouped.setdefault(row.contact_id, []).append(row)
        return [grouped.get(key, []) for key in keys]


@dataclass
class CampaignFigures:
    """What stats are computed from: member counts per status, and the opportunities
    the campaign sourced (count; amounts in the campaign's currency)."""

    by_status: dict[MemberStatus, int] = field(default_factory=dict)
    sourced_count: int = 0
    sourced_amount: Decimal = Decimal("0.00")
    won_amount: Decimal = Decimal("0.00")


class CampaignFiguresLoader(Loader):
    """Stats figures of every campaign of a request in two aggregating statements."""

    async def batch_load_fn(self, keys: list[int]) -> list[CampaignFigures]:
        figures = {key: CampaignFigures() for key in keys}
        members = (select(CAMPAIGN_MEMBERS.c.campaign_id, CAMPAIGN_MEMBERS.c.status,
                          func.count())
                   .where(CAMPAIGN_MEMBERS.c.campaign_id.in_(keys))
                   .group_by(CAMPAIGN_MEMBERS.c.campaign_id, CAMPAIGN_MEMBERS.c.status))
        won = select(PHASES.c.outcome).where(
            PHASES.c.id == OPPORTUNITIES.c.phase_id).scalar_subquery() == PhaseOutcome.WON
        in_currency = select(CAMPAIGNS.c.currency).where(
            CAMPAIGNS.c.id == OPPORTUNITIES.c.source_campaign_id
        ).scalar_subquery() == OPPORTUNITIES.c.currency
        # Keyed in a subquery, grouped outside: correlated keys cannot be grouped by.
        rows = (select(OPPORTUNITIES.c.source_campaign_id.label("campaign"), won.label("won"),
                       in_currency.label("same"), OPPORTUNITIES.c.amount)
                .where(OPPORTUNITIES.c.source_campaign_id.in_(keys)).subquery())
        sourced = (select(rows.c.campaign, rows.c.won, rows.c.same, func.count(),
                          type_coerce(func.sum(rows.c.amount), Money()))
                   .group_by(rows.c.campaign, rows.c.won, rows.c.same))
        async with self.db.read() as connection:
            for campaign, status, count in await connection.execute(members):
                figures[campaign].by_status[status] = int(count)
            for campaign, is_won, same, count, amount in await connection.execute(sourced):
                found = figures[campaign]
                found.sourced_count += int(count)
                if same:
                    found.sourced_amount += amount or Decimal(0)
                    if is_won:
                        found.won_amount += amount or Decimal(0)
        return [figures[key] for key in keys]
