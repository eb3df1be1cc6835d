"""Campaigns: lists, stats, and the mutations: campaigns and their status, members added
by hand or set-based from a target group (with the channel's consent), member statuses
with the event waiting list, call agents, and calls logged as activities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.campaigns import (
    CAMPAIGN_FILTER,
    CAMPAIGN_MEMBERS,
    CAMPAIGN_ORDER,
    CAMPAIGNS,
    RESPONSES,
    CampaignFigures,
    campaigns_statement,
)
from loaders.container import Loaders
from loaders.query import PageArgs
from loaders.target_groups import group_contact_ids
from loaders.users import CONTACTS, USERS
from models.base import utcnow
from models.campaigns import Campaign, CampaignMember, CampaignStatus, CampaignType, MemberStatus
from models.db import Database
from models.target_groups import TargetGroup, TargetGroupVisibility
from models.users import Role, Viewer
from resolvers.errors import UserErrorCode, UserInputError
from resolvers.mutations import (
    Checks,
    Outcome,
    forbidden,
    is_currency_code,
    lock_row,
    mutate,
    not_found,
    require_version,
)
from resolvers.pages import Listing, list_rows
from resolvers.policy import can_assign, can_write, load_owner

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000000")
MAX_CONTACTS_PER_CALL = 5000

STATUSES: dict[CampaignType, tuple[MemberStatus, ...]] = {
    CampaignType.EVENT: (MemberStatus.INVITED, MemberStatus.REGISTERED,
                         MemberStatus.WAITLISTED, MemberStatus.ATTENDED, MemberStatus.NO_SHOW,
                         MemberStatus.DECLINED),
    CampaignType.CALL: (MemberStatus.TO_CALL, MemberStatus.CALLED, MemberStatus.REACHED,
                        MemberStatus.NOT_REACHED),
    CampaignType.EMAIL: (MemberStatus.SENT, MemberStatus.OPENED, MemberStatus.BOUNCED,
                         MemberStatus.UNSUBSCRIBED),
    CampaignType.PROJECT: (MemberStatus.INVOLVED, MemberStatus.RESPONDED),
}
FIRST_STATUS = {kind: statuses[0] for kind, statuses in STATUSES.items()}
# Forward only; cancellation from any open state.
NEXT_STATUS = {
    CampaignStatus.PLANNED: {CampaignStatus.ACTIVE, CampaignStatus.CANCELLED},
    CampaignStatus.ACTIVE: {CampaignStatus.COMPLETED, CampaignStatus.CANCELLED},
    CampaignStatus.COMPLETED: set(),
    CampaignStatus.CANCELLED: set(),
}
# Holding a place at an event.
SEATED = (MemberStatus.REGISTERED, MemberStatus.ATTENDED)

# A concurrent writer got past our checks first and a unique key stopped us.
ON_DUPLICATE = "someone else added the same members at the same time; retry"


async def list_campaigns(*, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any
                         ) -> Listing:
    return await list_rows(
        loaders=loaders, statement=campaigns_statement(loaders.viewer), spec=CAMPAIGN_FILTER,
        filter=filter, orderable=CAMPAIGN_ORDER, default_order=("CREATED_AT",),
        order_by=order_by, args=args,
    )


# --- stats --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    by_status: list[tuple[MemberStatus, int]]
    member_count: int
    response_count: int
    response_rate: float | None
    sourced_opportunity_count: int
    sourced_opportunity_amount: Decimal
    won_amount: Decimal
    cost_per_response: Decimal | None
    roi: float | None


def stats(campaign: Any, figures: CampaignFigures) -> Stats:
    """The campaign's results from its SQL-aggregated figures."""
    members = sum(figures.by_status.values())
    responses = sum(count for status, count in figures.by_status.items()
                    if status in RESPONSES[campaign.type])
    cost = campaign.actual_cost
    return Stats(
        by_status=[(status, figures.by_status.get(status, 0))
                   for status in STATUSES[campaign.type]],
        member_count=members, response_count=responses,
        response_rate=round(responses / members, 4) if members else None,
        sourced_opportunity_count=figures.sourced_count,
        sourced_opportunity_amount=figures.sourced_amount.quantize(CENT),
        won_amount=figures.won_amount.quantize(CENT),
        cost_per_response=(cost / responses).quantize(CENT) if cost is not None and responses
        else None,
        roi=round(float((figures.won_amount - cost) / cost), 4) if cost else None,
    )


# --- campaigns ----------------------------------------------------------------------------


def _money(checks: Checks, field_name: str, value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if not value.is_finite() or value < 0 or value >= MAX_AMOUNT or value != value.quantize(
            CENT):
        checks.fail(field_name, f"{field_name} is an amount from 0 with at most two decimals")
        return None
    return value.quantize(CENT)


def _apply(checks: Checks, campaign: Campaign, values: dict[str, Any]) -> None:
    """Set the plain fields sent, checked."""
    if "name" in values:
        campaign.name = checks.text("name", values["name"], max_length=200,
                                    required=True) or campaign.name
    if "description" in values:
        campaign.description = checks.text("description", values["description"],
                                           max_length=5000)
    for key, field_name in (("budget", "budget"), ("actual_cost", "actualCost"),
                            ("expected_revenue", "expectedRevenue")):
        if key in values:
            setattr(campaign, key, _money(checks, field_name, values[key]))
    if "currency" in values:
        if not is_currency_code(values["currency"]):
            checks.fail("currency", "currency is a three-letter ISO 4217 code such as EUR")
        else:
            campaign.currency = values["currency"]
    for key in ("starts_on", "ends_on", "event_starts_at"):
        if key in values:
            setattr(campaign, key, values[key])
    if "event_place" in values:
        campaign.event_place = checks.text("eventPlace", values["event_place"],
                                           max_length=300)
    if "capacity" in values:
        if values["capacity"] is not None and not 0 <= values["capacity"] <= 1_000_000:
            checks.fail("capacity", "capacity is a number of places from 0")
        else:
            campaign.capacity = values["capacity"]
    if campaign.starts_on and campaign.ends_on and campaign.ends_on < campaign.starts_on:
        checks.fail("endsOn", "endsOn comes before startsOn")
    if campaign.type is not CampaignType.EVENT and any(
            getattr(campaign, key) is not None
            for key in ("event_place", "event_starts_at", "capacity")):
        checks.fail("type", "place, start time and capacity are for EVENT campaigns")


async def create_campaign(*, viewer: Viewer, db: Database, kind: CampaignType,
                          values: dict[str, Any], owner_gid: str | None
                          ) -> Outcome[Campaign]:
    async def action() -> Campaign:
        if viewer.role is Role.PARTNER:
            raise forbidden("partners cannot create campaigns")
        async with db.transaction() as session:
            checks = Checks()
            campaign = Campaign(type=kind, status=CampaignStatus.PLANNED, currency="EUR",
                                owner_id=viewer.user_id, name="")
            with session.no_autoflush:
                _apply(checks, campaign, {"currency": "EUR", **values})
                if owner_gid is not None:
                    key = checks.global_id("ownerId", owner_gid, "User")
                    owner = await load_owner(session, key) if key is not None else None
                    if key is not None and owner is None:
                        checks.fail("ownerId", "user not found", UserErrorCode.NOT_FOUND)
                    elif owner is not None and (reason := can_assign(viewer, owner)):
                        checks.fail("ownerId", reason, UserErrorCode.FORBIDDEN)
                    elif owner is not None:
                        campaign.owner_id = owner.id
            checks.raise_if_any()
            session.add(campaign)
            await session.flush()
        return campaign

    return await mutate(action)


async def _writable(session: AsyncSession, viewer: Viewer, gid: str,
                    expected_version: int | None, field_name: str = "id") -> Campaign:
    if viewer.role is Role.PARTNER:
        raise forbidden("partners cannot change campaigns")
    checks = Checks()
    key = checks.global_id(field_name, gid, "Campaign")
    checks.raise_if_any()
    campaign = await session.get(Campaign, key)
    if campaign is None:
        raise not_found(field_name, "campaign")
    owner = await load_owner(session, campaign.owner_id)
    if owner is None or not can_write(viewer, owner):
        raise forbidden("only the owner, its manager or an admin changes a campaign",
                        field_name)
    if expected_version is not None:
        require_version(campaign.version, expected_version)
    return campaign


async def update_campaign(*, viewer: Viewer, db: Database, campaign_id: str,
                          expected_version: int, changes: dict[str, Any]
                          ) -> Outcome[Campaign]:
    async def action() -> Campaign:
        async with db.transaction() as session:
            campaign = await _writable(session, viewer, campaign_id, expected_version)
            checks = Checks()
            status = changes.pop("status", None)
            with session.no_autoflush:
                _apply(checks, campaign, changes)
                capacity_changed = "capacity" in changes
                if status is not None and status is not campaign.status:
                    if status not in NEXT_STATUS[campaign.status]:
                        checks.fail("status", f"a {campaign.status.value} campaign cannot "
                                    f"become {status.value}: statuses only go forward, and "
                                    "only an open campaign is cancelled")
                    else:
                        campaign.status = status
            checks.raise_if_any()
            if capacity_changed:
                await lock_campaign(session, campaign.id)
                await fill_places(session, campaign)
            await session.flush()
        return campaign

    return await mutate(action)


# --- members ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Added:
    campaign: Campaign
    added: int
    skipped_existing: int
    skipped_no_consent: int


def _consents(kind: CampaignType) -> Any:
    """The contacts the campaign's channel may reach: email consent for EMAIL, phone
    consent and a phone number for CALL; anyone for events and projects."""
    if kind is CampaignType.EMAIL:
        return and_(CONTACTS.c.email_consent.is_(True), CONTACTS.c.email.is_not(None))
    if kind is CampaignType.CALL:
        return and_(CONTACTS.c.phone_consent.is_(True), CONTACTS.c.phone.is_not(None))
    return literal(True)


async def _add_members(session: AsyncSession, campaign: Campaign, contact_ids: Any) -> Added:
    """Add the contacts ``contact_ids`` (ids, or a select of ids) that consent and are not
    members yet, with one INSERT ... SELECT however many there are."""
    chosen = [CONTACTS.c.id.in_(contact_ids)]
    member = exists().where(CAMPAIGN_MEMBERS.c.campaign_id == campaign.id,
                            CAMPAIGN_MEMBERS.c.contact_id == CONTACTS.c.id)
    total, existing = (await session.execute(select(
        func.count(), func.coalesce(func.sum(case((member, 1), else_=0)), 0)
    ).where(*chosen))).one()
    now = utcnow()
    result = await session.execute(insert(CAMPAIGN_MEMBERS).from_select(
        ["campaign_id", "contact_id", "status", "version", "created_at", "updated_at"],
        select(literal(campaign.id), CONTACTS.c.id, literal(FIRST_STATUS[campaign.type].name),
               literal(1), literal(now, type_=CAMPAIGN_MEMBERS.c.created_at.type),
               literal(now, type_=CAMPAIGN_MEMBERS.c.updated_at.type))
        .where(*chosen, _consents(campaign.type), ~member)))
    added = result.rowcount or 0
    if added:
        campaign.updated_at = now  # members changed: the campaign takes a version
        await session.flush()
    return Added(campaign, added, int(existing), int(total) - int(existing) - added)


async def add_campaign_members(*, viewer: Viewer, db: Database, campaign_id: str,
                               contact_ids: list[str]) -> Outcome[Added]:
    async def action() -> Added:
        async with db.transaction() as session:
            campaign = await _open_for_members(session, viewer, campaign_id)
            checks = Checks()
            if len(contact_ids) > MAX_CONTACTS_PER_CALL:
                checks.fail("contactIds", f"at most {MAX_CONTACTS_PER_CALL} contacts per call")
                checks.raise_if_any()
            keys = [checks.global_id(f"contactIds.{n}", gid, "Contact")
                    for n, gid in enumerate(contact_ids)]
            checks.raise_if_any()
            found = set((await session.execute(
                select(CONTACTS.c.id).where(CONTACTS.c.id.in_(set(keys))))).scalars())
            for n, key in enumerate(keys):
                if key not in found:
                    checks.fail(f"contactIds.{n}", "contact not found", UserErrorCode.NOT_FOUND)
            checks.raise_if_any()
            return await _add_members(session, campaign, sorted(found))

    return await mutate(action, on_duplicate=ON_DUPLICATE)


async def add_target_group(*, viewer: Viewer, db: Database, campaign_id: str,
                           group_id: str, saved_filter: Any) -> Outcome[Added]:
    """Add a target group's contacts (an ACCOUNT group: its accounts' contacts) that
    consent to the campaign's channel, set-based. ``saved_filter`` is the group's filter
    read back as its input type."""
    async def action() -> Added:
        async with db.transaction() as session:
            campaign = await _open_for_members(session, viewer, campaign_id)
            checks = Checks()
            key = checks.global_id("targetGroupId", group_id, "TargetGroup")
            checks.raise_if_any()
            group = await session.get(TargetGroup, key)
            if group is None or (group.visibility is TargetGroupVisibility.PERSONAL
                                 and group.owner_id != viewer.user_id):
                raise not_found("targetGroupId", "target group")
            return await _add_members(session, campaign, group_contact_ids(
                group.id, group.kind, viewer, saved_filter))

    return await mutate(action, on_duplicate=ON_DUPLICATE)


async def _open_for_members(session: AsyncSession, viewer: Viewer, campaign_id: str
                            ) -> Campaign:
    campaign = await _writable(session, viewer, campaign_id, None, "campaignId")
    if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
        raise UserInputError.one("campaignId", UserErrorCode.VALIDATION,
                                 f"a {campaign.status.value} campaign takes no new members")
    return campaign


async def lock_campaign(session: AsyncSession, campaign_id: int) -> None:
    """Serialise the writers of one campaign's members (the waiting list counts places)."""
    await lock_row(session, CAMPAIGNS, campaign_id)


async def set_member_status(*, viewer: Viewer, db: Database, member_id: str,
                            status: MemberStatus, notes: str | None,
                            expected_version: int | None) -> Outcome[CampaignMember]:
    """Set a member's status, of the campaign's type. At an event, a registration beyond
    the capacity is WAITLISTED, and a freed place goes to the first on the waiting list."""
    async def action() -> CampaignMember:
        async with db.transaction() as session:
            checks = Checks()
            key = checks.global_id("id", member_id, "CampaignMember")
            checks.raise_if_any()
            member = await session.get(CampaignMember, key)
            if member is None:
                raise not_found("id", "campaign member")
            await lock_campaign(session, member.campaign_id)
            campaign = await _writable_for_agent(session, viewer, member)
            await session.refresh(member)  # as it is now that the campaign is locked
            if expected_version is not None:
                require_version(member.version, expected_version)
            if status not in STATUSES[campaign.type]:
                allowed = ", ".join(s.value for s in STATUSES[campaign.type])
                raise UserInputError.one("status", UserErrorCode.VALIDATION,
                                         f"a {campaign.type.value} campaign's members are "
                                         f"{allowed}")
            if notes is not None:
                member.notes = checks.text("notes", notes, max_length=5000)
            checks.raise_if_any()
            await _move(session, campaign, member, status)
            await session.flush()
        return member

    return await mutate(action)


async def _writable_for_agent(session: AsyncSession, viewer: Viewer, member: CampaignMember
                              ) -> Campaign:
    """The member's campaign, if the viewer may change the member: whoever may change
    the campaign, and the agent the member is assigned to."""
    if viewer.role is Role.PARTNER:
        raise forbidden("partners cannot change campaigns")
    campaign = await session.get(Campaign, member.campaign_id)
    assert campaign is not None
    if member.agent_id == viewer.user_id:
        return campaign
    owner = await load_owner(session, campaign.owner_id)
    if owner is None or not can_write(viewer, owner):
        raise forbidden("only the campaign's owner, its manager, an admin or the member's "
                        "agent changes a member")
    return campaign


async def _move(session: AsyncSession, campaign: Campaign, member: CampaignMember,
                status: MemberStatus) -> None:
    now = utcnow()
    was_seated = member.status in SEATED
    if status is MemberStatus.REGISTERED and campaign.capacity is not None and not was_seated:
        seated = (await session.execute(select(func.count()).where(
            CAMPAIGN_MEMBERS.c.campaign_id == campaign.id,
            CAMPAIGN_MEMBERS.c.status.in_(SEATED)))).scalar_one()
        if seated >= campaign.capacity:
            status = MemberStatus.WAITLISTED
    if status is MemberStatus.WAITLISTED and member.status is not MemberStatus.WAITLISTED:
        member.waitlisted_at = now
    elif status is not MemberStatus.WAITLISTED:
        member.waitlisted_at = None
    member.status = status
    if status in RESPONSES[campaign.type] and member.responded_at is None:
        member.responded_at = now
    await session.flush()
    if was_seated and status not in SEATED:
        await fill_places(session, campaign)


async def fill_places(session: AsyncSession, campaign: Campaign) -> None:
    """Free places go to the waiting list, first come first served, up to the capacity
    (a place freed when the capacity was lowered below the seated stays empty)."""
    if campaign.type is not CampaignType.EVENT:
        return
    await session.flush()
    waiting = select(CampaignMember).where(CampaignMember.campaign_id == campaign.id,
                                           CampaignMember.status == MemberStatus.WAITLISTED)
    if campaign.capacity is not None:
        seated = (await session.execute(select(func.count()).where(
            CAMPAIGN_MEMBERS.c.campaign_id == campaign.id,
            CAMPAIGN_MEMBERS.c.status.in_(SEATED)))).scalar_one()
        free = campaign.capacity - seated
        if free <= 0:
            return
        waiting = waiting.limit(free)
    now = utcnow()
    for member in (await session.execute(waiting.order_by(
            CampaignMember.waitlisted_at, CampaignMember.id))).scalars():
        member.status = MemberStatus.REGISTERED
        member.waitlisted_at = None
        member.updated_at = now


async def assign_agents(*, viewer: Viewer, db: Database, campaign_id: str,
                        agent_ids: list[str], only_unassigned: bool) -> Outcome[Campaign]:
    """Deal a CALL campaign's members to agents round-robin, in member order, with one
    UPDATE however many members there are."""
    async def action() -> Campaign:
        async with db.transaction() as session:
            campaign = await _writable(session, viewer, campaign_id, None, "campaignId")
            checks = Checks()
            if campaign.type is not CampaignType.CALL:
                checks.fail("campaignId", "agents call the members of CALL campaigns")
            if not agent_ids or len(agent_ids) > 100:
                checks.fail("agentIds", "give 1 to 100 agents")
            keys = [checks.global_id(f"agentIds.{n}", gid, "User")
                    for n, gid in enumerate(agent_ids)]
            checks.raise_if_any()
            users = {row.id: row for row in await session.execute(
                select(USERS.c.id, USERS.c.role, USERS.c.active).where(USERS.c.id.in_(keys)))}
            for n, key in enumerate(keys):
                user = users.get(key)
                if user is None:
                    checks.fail(f"agentIds.{n}", "user not found", UserErrorCode.NOT_FOUND)
                elif user.role is Role.PARTNER or not user.active:
                    checks.fail(f"agentIds.{n}", "agents are active staff users")
            checks.raise_if_any()
            agents = list(dict.fromkeys(keys))
            chosen = [CAMPAIGN_MEMBERS.c.campaign_id == campaign.id]
            if only_unassigned:
                chosen.append(CAMPAIGN_MEMBERS.c.agent_id.is_(None))
            members = (await session.execute(select(CAMPAIGN_MEMBERS.c.id).where(*chosen)
                                             .order_by(CAMPAIGN_MEMBERS.c.id))).scalars().all()
            if members:
                now = utcnow()
                # One executemany: each member's turn in the round.
                await session.execute(
                    update(CAMPAIGN_MEMBERS)
                    .where(CAMPAIGN_MEMBERS.c.id == bindparam("member"))
                    .values(agent_id=bindparam("agent"), updated_at=now,
                            version=CAMPAIGN_MEMBERS.c.version + 1)
                    .execution_options(synchronize_session=False),
                    [{"member": key, "agent": agents[n % len(agents)]}
                     for n, key in enumerate(members)])
            campaign.updated_at = utcnow()
            await session.flush()
        return campaign

    return await mutate(action)


async def record_call(session: AsyncSession, *, campaign_id: int | None,
                      contact_id: int | None, type_code: str, when: date | datetime) -> None:
    """A CALL activity logged as done for a call campaign's member: the member was
    CALLED (agents then say whether they REACHED the contact)."""
    if campaign_id is None or contact_id is None or type_code != "CALL":
        return
    member = (await session.execute(select(CampaignMember).join(
        Campaign, Campaign.id == CampaignMember.campaign_id).where(
        CampaignMember.campaign_id == campaign_id, CampaignMember.contact_id == contact_id,
        Campaign.type == CampaignType.CALL))).scalars().first()
    if member is not None and member.status in (MemberStatus.TO_CALL,
                                                MemberStatus.NOT_REACHED):
        member.status = MemberStatus.CALLED
        member.updated_at = utcnow()
