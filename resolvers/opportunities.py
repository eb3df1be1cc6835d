"""Pipelines and opportunities: lists, the pipeline summary, the mutations that move
deals through phases, and the live feed of those moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.container import Loaders
from loaders.opportunities import (
    OPPORTUNITIES,
    OPPORTUNITY_FILTER,
    OPPORTUNITY_ORDER,
    PHASE_CHANGES,
    PHASES,
    PIPELINES,
    opportunities_statement,
    visible_opportunities,
)
from loaders.query import PageArgs, compile_filter
from loaders.users import account_is_shared
from models.accounts import Account
from models.base import Money, utcnow
from models.campaigns import Campaign
from models.db import Database
from models.opportunities import (
    Opportunity,
    Phase,
    PhaseChange,
    PhaseOutcome,
    Pipeline,
    PipelineKind,
)
from models.pricing import OfferingArea
from models.users import Role, Viewer
from resolvers.errors import UserErrorCode, UserInputError
from resolvers.mutations import (
    Checks,
    Outcome,
    currency_argument,
    find_record,
    forbidden,
    mutate,
    not_found,
    require_version,
)
from resolvers.pages import Listing, list_rows
from resolvers.policy import can_assign, can_write, load_owner, partner_writes
from subscriptions.hub import EventHub
from subscriptions.outbox import OPPORTUNITY_TOPIC, EventRecord, record_event

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000000")


class ChangeKind:
    CREATED = "CREATED"
    MOVED = "MOVED"
    WON = "WON"
    LOST = "LOST"
    REOPENED = "REOPENED"
    UPDATED = "UPDATED"


PHASE_ENTRIES = frozenset({ChangeKind.CREATED, ChangeKind.MOVED, ChangeKind.WON,
                           ChangeKind.LOST, ChangeKind.REOPENED})
ALL_CHANGES = PHASE_ENTRIES | {ChangeKind.UPDATED}


async def list_opportunities(*, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any,
                             columns: tuple[str, ...] | None = None) -> Listing:
    return await list_rows(
        loaders=loaders, statement=opportunities_statement(loaders.viewer),
        spec=OPPORTUNITY_FILTER, filter=filter, orderable=OPPORTUNITY_ORDER,
        default_order=("CREATED_AT",), order_by=order_by, args=args, columns=columns,
    )


async def list_pipelines(*, loaders: Loaders, kind: PipelineKind | None) -> list[Any]:
    statement = select(PIPELINES).order_by(PIPELINES.c.name, PIPELINES.c.id)
    if kind is not None:
        statement = statement.where(PIPELINES.c.kind == kind)
    async with loaders.db.read() as connection:
        return list((await connection.execute(statement)).all())


# --- the pipeline summary -----------------------------------------------------------------


@dataclass(frozen=True)
class PhaseFigures:
    phase: Any  # the phase row
    count: int
    amount: Decimal
    weighted_amount: Decimal


@dataclass(frozen=True)
class Summary:
    pipeline: Any
    currency: str
    as_of: date | None
    phases: list[PhaseFigures]

    def totals(self, outcomes: frozenset[PhaseOutcome] | None = None) -> PhaseFigures:
        rows = [p for p in self.phases if outcomes is None or p.phase.outcome in outcomes]
        return PhaseFigures(None, sum(p.count for p in rows),
                            sum((p.amount for p in rows), Decimal("0.00")),
                            sum((p.weighted_amount for p in rows), Decimal("0.00")))


def _weighted(amount: ColumnElement[Any], probability: ColumnElement[Any]) -> Any:
    # Summed in SQL as amount x percent, divided once: exact on both databases
    # (Money keeps SQLite amounts as integers), rounded to cents in Python.
    return type_coerce(func.sum(amount * probability), Money())


def end_of_day(day: date, timezone: str) -> datetime:
    local = datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC)


async def pipeline_summary(*, loaders: Loaders, pipeline_id: int, filter: Any,
                           as_of: date | None, currency: str, timezone: str) -> Summary | None:
    currency = currency_argument(currency)
    viewer = loaders.viewer
    async with loaders.db.read() as connection:
        pipeline = (await connection.execute(
            select(PIPELINES).where(PIPELINES.c.id == pipeline_id))).first()
        if pipeline is None:
            return None
        # The phases in use at the moment described: a removed one only before removal.
        in_use_at = end_of_day(as_of, timezone) if as_of is not None else utcnow()
        phases = (await connection.execute(
            select(PHASES).where(PHASES.c.pipeline_id == pipeline_id,
                                 PHASES.c.removed_at.is_(None)
                                 | (PHASES.c.removed_at > in_use_at))
            .order_by(PHASES.c.position, PHASES.c.id))).all()
        chosen = (select(OPPORTUNITIES.c.id).where(
            OPPORTUNITIES.c.pipeline_id == pipeline_id,
            OPPORTUNITIES.c.currency == currency,
            visible_opportunities(viewer),
            compile_filter(OPPORTUNITY_FILTER, filter, viewer)))
        if as_of is None:
            statement = (
                select(OPPORTUNITIES.c.phase_id, func.count(),
                       type_coerce(func.sum(OPPORTUNITIES.c.amount), Money()),
                       _weighted(OPPORTUNITIES.c.amount, OPPORTUNITIES.c.probability))
                .where(OPPORTUNITIES.c.id.in_(chosen))
                .group_by(OPPORTUNITIES.c.phase_id))
        else:
            # The pipeline as it stood at the end of that day: each opportunity's
            # latest phase entry up to then, with the amount it had then.
            cutoff = end_of_day(as_of, timezone)
            ranked = select(
                PHASE_CHANGES.c.to_phase_id, PHASE_CHANGES.c.amount,
                PHASE_CHANGES.c.probability,
                func.row_number().over(
                    partition_by=PHASE_CHANGES.c.opportunity_id,
                    order_by=[PHASE_CHANGES.c.changed_at.desc(), PHASE_CHANGES.c.id.desc()],
                ).label("recent"),
            ).where(PHASE_CHANGES.c.changed_at < cutoff,
                    PHASE_CHANGES.c.opportunity_id.in_(chosen)).subquery()
            statement = (
                select(ranked.c.to_phase_id, func.count(),
                       type_coerce(func.sum(ranked.c.amount), Money()),
                       _weighted(ranked.c.amount, ranked.c.probability))
                .where(ranked.c.recent == 1).group_by(ranked.c.to_phase_id))
        figures = {row[0]: row for row in await connection.execute(statement)}
    rows = []
    for phase in phases:
        found = figures.get(phase.id)
        count, amount, weighted = (found[1], found[2], found[3]) if found else (0, None, None)
        rows.append(PhaseFigures(
            phase, int(count), (amount or Decimal(0)).quantize(CENT),
            ((weighted or Decimal(0)) / 100).quantize(CENT, rounding=ROUND_HALF_UP)))
    return Summary(pipeline, currency, as_of, rows)


# --- mutations ----------------------------------------------------------------------------


def _money(checks: Checks, field_name: str, value: Decimal | None) -> Decimal | None:
    if value is None:
        checks.fail(field_name, f"{field_name} is required")
        return None
    if not value.is_finite() or value < 0 or value >= MAX_AMOUNT:
        checks.fail(field_name, f"{field_name} must be between 0 and {MAX_AMOUNT}")
        return None
    if value != value.quantize(CENT):
        checks.fail(field_name, f"{field_name} has at most two decimals")
        return None
    return value


def _probability(checks: Checks, value: int | None, field_name: str = "probability"
                 ) -> int | None:
    if value is not None and not 0 <= value <= 100:
        checks.fail(field_name, "probability is a percent from 0 to 100")
        return None
    return value


async def _phase(session: AsyncSession, checks: Checks, field_name: str, phase_gid: str | None
                 ) -> Phase | None:
    phase = await find_record(session, checks, field_name, phase_gid, Phase, "phase")
    if phase is not None and phase.removed_at is not None:  # it takes no more entries
        checks.fail(field_name, "phase not found", UserErrorCode.NOT_FOUND)
        return None
    return phase


async def _offering_area(session: AsyncSession, checks: Checks, field_name: str,
                         area_gid: str | None) -> int | None:
    # Checked here: an unknown key would otherwise surface as a foreign key failure.
    area = await find_record(session, checks, field_name, area_gid, OfferingArea,
                             "offering area")
    return area.id if area is not None else None


async def source_campaign(session: AsyncSession, checks: Checks, field_name: str,
                          campaign_gid: str | None) -> int | None:
    key = checks.global_id(field_name, campaign_gid, "Campaign")
    if key is not None and await session.get(Campaign, key) is None:
        checks.fail(field_name, "campaign not found", UserErrorCode.NOT_FOUND)
        return None
    return key


async def _owner_team(session: AsyncSession, owner_id: int) -> int | None:
    owner = await load_owner(session, owner_id)
    return None if owner is None else owner.team_id


async def _writable(session: AsyncSession, viewer: Viewer, checks: Checks, gid: str
                    ) -> Opportunity:
    key = checks.global_id("id", gid, "Opportunity")
    checks.raise_if_any()
    opportunity = await session.get(Opportunity, key)
    if opportunity is None or (viewer.is_partner and not await _shared(session, viewer,
                                                                        opportunity.account_id)):
        raise not_found("id", "opportunity")
    if partner_writes(viewer):
        return opportunity  # shared with the org, as checked above
    owner = await load_owner(session, opportunity.owner_id)
    if owner is None or not can_write(viewer, owner):
        raise forbidden("you cannot change this opportunity")
    return opportunity


async def _shared(session: AsyncSession, viewer: Viewer, account_id: int) -> bool:
    return bool((await session.execute(select(account_is_shared(viewer, account_id)))
                 ).scalar())


async def _enter_phase(session: AsyncSession, *, viewer: Viewer, opportunity: Opportunity,
                       phase: Phase, kind: str, previous_amount: Decimal | None,
                       now: datetime) -> EventRecord:
    """Record one entry into a phase: the history row and the outbox event, in the
    caller's transaction."""
    from_phase_id = None if kind == ChangeKind.CREATED else opportunity.phase_id
    opportunity.phase_id = phase.id
    opportunity.phase_entered_at = now
    await session.flush()
    return await _record(session, viewer=viewer, opportunity=opportunity, kind=kind,
                         from_phase_id=from_phase_id, previous_amount=previous_amount,
                         now=now, history=True)


async def _record(session: AsyncSession, *, viewer: Viewer, opportunity: Opportunity,
                  kind: str, from_phase_id: int | None, previous_amount: Decimal | None,
                  now: datetime, history: bool) -> EventRecord:
    delta = opportunity.amount - (previous_amount or Decimal(0))
    event = await record_event(session, topic=OPPORTUNITY_TOPIC, payload={
        "kind": kind,
        "opportunityId": opportunity.id,
        "accountId": opportunity.account_id,
        "pipelineId": opportunity.pipeline_id,
        "ownerId": opportunity.owner_id,
        "ownerTeamId": await _owner_team(session, opportunity.owner_id),
        "fromPhaseId": from_phase_id,
        "toPhaseId": opportunity.phase_id,
        "changedById": viewer.user_id,
        "changedAt": now.isoformat(),
        "amount": str(opportunity.amount),
        "amountDelta": str(delta),
        "currency": opportunity.currency,
    })
    if history:
        session.add(PhaseChange(
            opportunity_id=opportunity.id, from_phase_id=from_phase_id,
            to_phase_id=opportunity.phase_id, changed_by_id=viewer.user_id, changed_at=now,
            amount=opportunity.amount, probability=opportunity.probability, event_id=event.id,
        ))
        await session.flush()
    return event


async def _last_amount(session: AsyncSession, opportunity_id: int) -> Decimal | None:
    return (await session.execute(
        select(PHASE_CHANGES.c.amount).where(PHASE_CHANGES.c.opportunity_id == opportunity_id)
        .order_by(PHASE_CHANGES.c.changed_at.desc(), PHASE_CHANGES.c.id.desc()).limit(1)
    )).scalar_one_or_none()


async def insert_opportunity(
    session: AsyncSession, *, viewer: Viewer, checks: Checks, account_id: int | None,
    name: str | None, amount: Decimal | None, currency: str | None, phase_gid: str | None,
    pipeline_gid: str | None, probability: int | None, expected_close_date: date | None,
    owner_gid: str | None, offering_area_gid: str | None, field_prefix: str = "",
    default_owner_id: int | None = None, source_campaign_gid: str | None = None,
    source_campaign_key: int | None = None,
) -> tuple[Opportunity, EventRecord]:
    """A new opportunity in its first phase, with its history and event; raises the
    collected userErrors. Used by createOpportunity and by convertLead. Without
    ``owner_gid`` the owner is ``default_owner_id``, else the viewer."""
    def field(name: str) -> str:
        return f"{field_prefix}{name}"

    values: dict[str, Any] = {
        "name": checks.text(field("name"), name, max_length=200, required=True),
        "amount": _money(checks, field("amount"), amount),
        "currency": checks.currency(field("currency"), currency),
        "expected_close_date": expected_close_date,
        "probability": _probability(checks, probability, field("probability")),
    }
    phase = await _phase(session, checks, field("phaseId"), phase_gid)
    if phase is None and phase_gid is None:
        phase = await _default_phase(session, checks, field("pipelineId"), pipeline_gid)
    if phase is not None:
        pipeline = await session.get(Pipeline, phase.pipeline_id)
        if pipeline is None or pipeline.kind is not PipelineKind.SALES:
            checks.fail(field("phaseId"), "opportunities live in a SALES pipeline")
        elif phase.outcome is not PhaseOutcome.OPEN:
            checks.fail(field("phaseId"), "a new opportunity starts in an open phase")
        elif pipeline_gid is not None and checks.global_id(
                field("pipelineId"), pipeline_gid, "Pipeline") not in (None, phase.pipeline_id):
            checks.fail(field("phaseId"), "the phase belongs to another pipeline")
    values["offering_area_id"] = await _offering_area(session, checks, field("offeringAreaId"),
                                                      offering_area_gid)
    values["source_campaign_id"] = await source_campaign(
        session, checks, field("sourceCampaignId"), source_campaign_gid) or source_campaign_key
    owner_id = checks.global_id(field("ownerId"), owner_gid, "User") if owner_gid else \
        default_owner_id or viewer.user_id
    if owner_id is not None and owner_gid is not None:
        owner = await load_owner(session, owner_id)
        if owner is None:
            checks.fail(field("ownerId"), "user not found", UserErrorCode.NOT_FOUND)
        elif reason := can_assign(viewer, owner):
            checks.fail(field("ownerId"), reason, UserErrorCode.FORBIDDEN)
    checks.raise_if_any()
    assert phase is not None
    now = utcnow()
    if values["probability"] is None:
        values["probability"] = phase.probability
    opportunity = Opportunity(
        **values, account_id=account_id, owner_id=owner_id, pipeline_id=phase.pipeline_id,
        phase_id=phase.id, phase_entered_at=now,
    )
    session.add(opportunity)
    await session.flush()
    event = await _enter_phase(session, viewer=viewer, opportunity=opportunity, phase=phase,
                               kind=ChangeKind.CREATED, previous_amount=None, now=now)
    return opportunity, event


async def _default_phase(session: AsyncSession, checks: Checks, field_name: str,
                         pipeline_gid: str | None) -> Phase | None:
    """The first open phase of the given pipeline, or of the first SALES pipeline."""
    statement = select(Phase).join(Pipeline, Pipeline.id == Phase.pipeline_id).where(
        Pipeline.kind == PipelineKind.SALES, Phase.outcome == PhaseOutcome.OPEN,
        Phase.removed_at.is_(None))
    if pipeline_gid is not None:
        key = checks.global_id(field_name, pipeline_gid, "Pipeline")
        if key is None:
            return None
        pipeline = await session.get(Pipeline, key)
        if pipeline is None:
            checks.fail(field_name, "pipeline not found", UserErrorCode.NOT_FOUND)
            return None
        if pipeline.kind is not PipelineKind.SALES:
            # As for a phase of one: the pipeline exists, it is the wrong kind.
            checks.fail(field_name, "opportunities live in a SALES pipeline")
            return None
        statement = statement.where(Pipeline.id == key)
    phase = (await session.execute(
        statement.order_by(Pipeline.id, Phase.position, Phase.id).limit(1))).scalars().first()
    if phase is None:
        checks.fail(field_name, "no SALES pipeline with an open phase found",
                    UserErrorCode.NOT_FOUND)
    return phase


async def _account_for(session: AsyncSession, viewer: Viewer, checks: Checks, gid: str
                       ) -> int | None:
    key = checks.global_id("accountId", gid, "Account")
    if key is None:
        return None
    account = await session.get(Account, key)
    if account is None or (viewer.is_partner and not await _shared(session, viewer, key)):
        raise not_found("accountId", "account")
    if account.archived:
        checks.fail("accountId", "archived accounts take no new opportunities")
        return None
    return account.id


async def create_opportunity(
    *, viewer: Viewer, db: Database, events: EventHub, account_id: str, name: str,
    amount: Decimal, currency: str, phase_id: str | None = None,
    pipeline_id: str | None = None, probability: int | None = None,
    expected_close_date: date | None = None, owner_id: str | None = None,
    offering_area_id: str | None = None, source_campaign_id: str | None = None,
) -> Outcome[Opportunity]:
    async def action() -> Opportunity:
        if viewer.is_partner and not partner_writes(viewer):
            raise forbidden("partners cannot create opportunities")
        async with db.transaction() as session:
            checks = Checks()
            account = await _account_for(session, viewer, checks, account_id)
            default_owner = None
            if viewer.is_partner:
                # A partner's deal belongs to the account's owner, who follows it up.
                if owner_id is not None:
                    checks.fail("ownerId", "partners cannot choose the owner",
                                UserErrorCode.FORBIDDEN)
                if account is not None:
                    default_owner = (await session.get(Account, account)).owner_id  # type: ignore[union-attr]
            opportunity, event = await insert_opportunity(
                session, viewer=viewer, checks=checks, account_id=account, name=name,
                amount=amount, currency=currency, phase_gid=phase_id,
                pipeline_gid=pipeline_id, probability=probability,
                expected_close_date=expected_close_date, owner_gid=owner_id,
                offering_area_gid=offering_area_id, source_campaign_gid=source_campaign_id,
                default_owner_id=default_owner)
        await events.announce(event)
        return opportunity

    return await mutate(action)


async def update_opportunity(
    *, viewer: Viewer, db: Database, events: EventHub, opportunity_id: str,
    expected_version: int, changes: dict[str, Any],
) -> Outcome[Opportunity]:
    async def action() -> Opportunity:
        async with db.transaction() as session:
            checks = Checks()
            opportunity = await _writable(session, viewer, checks, opportunity_id)
            require_version(opportunity.version, expected_version)
            if opportunity.closed_at is not None:
                raise UserInputError.one("id", UserErrorCode.VALIDATION,
                                         "closed opportunities cannot be changed; reopen "
                                         "it by moving it to an open phase")
            previous_amount = opportunity.amount
            with session.no_autoflush:
                if "name" in changes:
                    opportunity.name = checks.text("name", changes["name"], max_length=200,
                                                   required=True) or opportunity.name
                if "amount" in changes and (
                        amount := _money(checks, "amount", changes["amount"])) is not None:
                    opportunity.amount = amount  # may be zero: no `or` fallback here
                if "currency" in changes:
                    opportunity.currency = checks.currency("currency", changes["currency"]) or \
                        opportunity.currency
                if "probability" in changes:
                    value = _probability(checks, changes["probability"])
                    if changes["probability"] is None:
                        checks.fail("probability", "probability cannot be null")
                    elif value is not None:
                        opportunity.probability = value
                if "expected_close_date" in changes:
                    opportunity.expected_close_date = changes["expected_close_date"]
                if "source_campaign_id" in changes:
                    opportunity.source_campaign_id = await source_campaign(
                        session, checks, "sourceCampaignId", changes["source_campaign_id"])
                if "offering_area_id" in changes:
                    opportunity.offering_area_id = await _offering_area(
                        session, checks, "offeringAreaId", changes["offering_area_id"])
                if "owner_id" in changes:
                    owner_id = checks.global_id("ownerId", changes["owner_id"], "User")
                    owner = await load_owner(session, owner_id) if owner_id else None
                    if owner is None:
                        checks.fail("ownerId", "user not found", UserErrorCode.NOT_FOUND)
                    elif reason := can_assign(viewer, owner):
                        checks.fail("ownerId", reason, UserErrorCode.FORBIDDEN)
                    else:
                        opportunity.owner_id = owner.id
            checks.raise_if_any()
            await session.flush()
            event = await _record(session, viewer=viewer, opportunity=opportunity,
                                  kind=ChangeKind.UPDATED, from_phase_id=opportunity.phase_id,
                                  previous_amount=previous_amount, now=utcnow(), history=False)
        await events.announce(event)
        return opportunity

    return await mutate(action)


async def move_phase(
    *, viewer: Viewer, db: Database, events: EventHub, opportunity_id: str, phase_id: str,
    expected_version: int, lost_reason: str | None = None, target: PhaseOutcome | None = None,
) -> Outcome[Opportunity]:
    """Move to ``phase_id`` (moveOpportunityPhase) or close to the pipeline's WON or LOST
    phase (``target``); moving a closed opportunity to an open phase reopens it."""

    async def action() -> Opportunity:
        async with db.transaction() as session:
            checks = Checks()
            opportunity = await _writable(session, viewer, checks, opportunity_id)
            require_version(opportunity.version, expected_version)
            if target is None:
                phase = await _phase(session, checks, "phaseId", phase_id)
                checks.raise_if_any()
                assert phase is not None
                if phase.pipeline_id != opportunity.pipeline_id:
                    checks.fail("phaseId", "the phase belongs to another pipeline")
                elif phase.outcome is not PhaseOutcome.OPEN:
                    checks.fail("phaseId", "close with closeOpportunityWon or "
                                "closeOpportunityLost")
                elif phase.id == opportunity.phase_id:
                    checks.fail("phaseId", "the opportunity is already in that phase")
                kind = ChangeKind.REOPENED if opportunity.closed_at else ChangeKind.MOVED
            else:
                phase = await _closing_phase(session, checks, opportunity, target, phase_id)
                if opportunity.closed_at is not None:
                    checks.fail("id", "the opportunity is already closed")
                kind = ChangeKind.WON if target is PhaseOutcome.WON else ChangeKind.LOST
                if target is PhaseOutcome.LOST:
                    lost = checks.text("reason", lost_reason, max_length=500, required=True)
            checks.raise_if_any()
            assert phase is not None
            now = utcnow()
            previous_amount = await _last_amount(session, opportunity.id)
            opportunity.probability = phase.probability
            if target is None:
                opportunity.closed_at = None
                opportunity.lost_reason = None
            else:
                opportunity.closed_at = now
                opportunity.lost_reason = lost if target is PhaseOutcome.LOST else None
            event = await _enter_phase(session, viewer=viewer, opportunity=opportunity,
                                       phase=phase, kind=kind, previous_amount=previous_amount,
                                       now=now)
        await events.announce(event)
        return opportunity

    return await mutate(action)


async def _closing_phase(session: AsyncSession, checks: Checks, opportunity: Opportunity,
                         outcome: PhaseOutcome, phase_gid: str | None) -> Phase | None:
    if phase_gid is not None:
        phase = await _phase(session, checks, "phaseId", phase_gid)
        if phase is not None and (phase.pipeline_id != opportunity.pipeline_id
                                  or phase.outcome is not outcome):
            checks.fail("phaseId", f"not a {outcome.value} phase of the opportunity's pipeline")
            return None
        return phase
    phases = (await session.execute(select(Phase).where(
        Phase.pipeline_id == opportunity.pipeline_id, Phase.outcome == outcome,
        Phase.removed_at.is_(None),
    ).order_by(Phase.position))).scalars().all()
    if len(phases) != 1:
        checks.fail("phaseId", f"the pipeline has {len(phases)} {outcome.value} phases: "
                    "name one with phaseId")
        return None
    return phases[0]


# --- the live feed ------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedFilter:
    pipeline_id: int | None = None
    owner_id: int | None = None
    team_id: int | None = None
    account_id: int | None = None

    def matches(self, payload: dict[str, Any]) -> bool:
        return all((
            self.pipeline_id is None or payload["pipelineId"] == self.pipeline_id,
            self.owner_id is None or payload["ownerId"] == self.owner_id,
            self.team_id is None or payload["ownerTeamId"] == self.team_id,
            self.account_id is None or payload["accountId"] == self.account_id,
        ))


async def _readable(db: Database, viewer: Viewer, account_id: int) -> bool:
    if viewer.role is not Role.PARTNER:
        return True
    async with db.read() as connection:
        return bool((await connection.execute(select(account_is_shared(viewer, account_id)))
                     ).scalar())


async def phase_changes(*, viewer: Viewer, db: Database, events: EventHub, feed: FeedFilter,
                        after: int | None, kinds: frozenset[str] = PHASE_ENTRIES,
                        ) -> AsyncIterator[EventRecord]:
    """Every matching event the viewer may read, replayed from ``after`` then live."""
    async for event in events.stream(
        frozenset({OPPORTUNITY_TOPIC}), after=after,
        matches=lambda e: e.payload["kind"] in kinds and feed.matches(e.payload),
    ):
        # Visibility is checked when the event is delivered: an account shared or
        # unshared since counts as it is now. An unshare (resolvers/sharing.py) is news to
        # the org that lost the accounts, whose summaries shrink, though it reads them no more.
        lost_by = event.payload.get("unsharedFrom")
        if (lost_by is not None and lost_by == viewer.partner_org_id) or await _readable(
                db, viewer, event.payload["accountId"]):
            yield event
