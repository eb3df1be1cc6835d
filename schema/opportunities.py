"""Pipelines, phases, opportunities and their history, the pipeline summary, the
mutations that move deals, and the live feed of phase changes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import UNSET, Private

from loaders.accounts import AccountByIdLoader, ContactByIdLoader
from loaders.ids import decode_id, decode_optional_id, encode_id
from loaders.opportunities import (
    LeadByIdLoader,
    OpportunityByIdLoader,
    PhaseByIdLoader,
    PhaseChangesByOpportunityLoader,
    PhasesByPipelineLoader,
    PipelineByIdLoader,
)
from loaders.pricing import OfferingAreaByIdLoader
from loaders.query import PageArgs
from loaders.users import UserByIdLoader
from models.opportunities import ForecastCategory as ForecastCategoryEnum
from models.opportunities import PhaseOutcome as PhaseOutcomeEnum
from models.opportunities import PipelineKind as PipelineKindEnum
from resolvers import leads as lead_resolvers
from resolvers import opportunities as resolve
from resolvers.opportunities import ChangeKind, FeedFilter
from schema import accounts as account_types  # Account and Opportunity refer to each other
from schema import activities as activity_types
from schema import campaigns as campaign_types
from schema.context import Info, viewer_of
from schema.errors import UserError, payload
from schema.filters import (
    DateFilter,
    DateTimeFilter,
    DecimalFilter,
    IDFilter,
    IntFilter,
    OrderDirection,
    StringFilter,
    enum_filter,
)
from schema.inputs import sent_changes
from schema.live import after_event, bursts, close_behind
from schema.pricing import OfferingArea
from schema.relay import Connection, Node, connection, planned_columns
from schema.rows import RowBacked, reads, related, rows_of, using
from schema.users import User, UserFilter, user_of
from subscriptions.hub import Overflowed
from subscriptions.outbox import EventRecord, last_event_id

if TYPE_CHECKING:
    from schema.accounts import Account, AccountFilter, Contact
    from schema.activities import Activity, ActivityFilter, ActivityOrder
    from schema.campaigns import Campaign

PipelineKind = strawberry.enum(PipelineKindEnum, name="PipelineKind")
PhaseOutcome = strawberry.enum(PhaseOutcomeEnum, name="PhaseOutcome",
                               description="Where a phase leaves a deal: still open, won, lost.")
ForecastCategory = strawberry.enum(ForecastCategoryEnum, name="ForecastCategory")
PhaseOutcomeFilter = enum_filter(PhaseOutcome, "PhaseOutcomeFilter")
ForecastCategoryFilter = enum_filter(ForecastCategory, "ForecastCategoryFilter")


@strawberry.enum(description="What happened to an opportunity in a phase-change event.")
class PhaseChangeKind(Enum):
    CREATED = ChangeKind.CREATED
    MOVED = ChangeKind.MOVED
    WON = ChangeKind.WON
    LOST = ChangeKind.LOST
    REOPENED = ChangeKind.REOPENED


def _days_since(moment: datetime) -> int:
    return max((datetime.now(UTC) - moment).days, 0)


# --- types --------------------------------------------------------------------------------


@strawberry.type(description="A sales or marketing process: ordered phases.")
class Pipeline(Node):
    id: strawberry.ID
    name: str
    kind: PipelineKind  # type: ignore[valid-type]
    active: bool
    version: int
    _key: Private[int]

    @classmethod
    def from_row(cls, row: Any) -> Pipeline:
        return cls(id=encode_id("Pipeline", row.id), name=row.name, kind=row.kind,
                   active=row.active, version=row.version, _key=row.id)

    @strawberry.field(description="The phases in order.")
    async def phases(self, info: Info) -> list[Phase]:
        rows = await info.context.loaders.get(PhasesByPipelineLoader).load(self._key)
        return [Phase.from_row(row) for row in rows]


@strawberry.type(description="One step of a pipeline.")
class Phase(RowBacked, Node):
    id: strawberry.ID
    name: str
    position: int
    probability: int = strawberry.field(
        description="Percent an opportunity entering the phase is given by default.")
    outcome: PhaseOutcome  # type: ignore[valid-type]
    forecast_category: ForecastCategory  # type: ignore[valid-type]
    version: int = strawberry.field(description="Pass as expectedVersion when changing it.")
    removed_at: datetime | None = strawberry.field(
        description="When an admin removed the phase: it is no longer among its pipeline's "
        "phases and takes no entries, but the phase history still refers to it.")
    _pipeline_id: Private[int]

    _reads = reads(
        id=using("id")(lambda row: encode_id("Phase", row.id)), name="name", position="position",
        probability="probability", outcome="outcome", forecast_category="forecast_category",
        version="version", removed_at="removed_at", _pipeline_id="pipeline_id")

    @strawberry.field
    async def pipeline(self, info: Info) -> Pipeline:
        row = await info.context.loaders.get(PipelineByIdLoader).load(self._pipeline_id)
        return Pipeline.from_row(row)


async def _phase(info: Info, key: int | None) -> Phase | None:
    if key is None:
        return None
    row = await info.context.loaders.get(PhaseByIdLoader).load(key)
    return Phase.from_row(row) if row else None


@strawberry.type(description="An entry of an opportunity into a phase.")
class PhaseChange(Node):
    id: strawberry.ID
    changed_at: datetime
    amount: Decimal = strawberry.field(description="The amount when it entered the phase.")
    probability: int
    _from: Private[int | None]
    _to: Private[int]
    _by: Private[int]

    @classmethod
    def from_row(cls, row: Any) -> PhaseChange:
        return cls(id=encode_id("PhaseChange", row.id), changed_at=row.changed_at,
                   amount=row.amount, probability=row.probability, _from=row.from_phase_id,
                   _to=row.to_phase_id, _by=row.changed_by_id)

    @strawberry.field(description="Null for the creation of the opportunity.")
    async def from_phase(self, info: Info) -> Phase | None:
        return await _phase(info, self._from)

    @strawberry.field
    async def to_phase(self, info: Info) -> Phase:
        return await _phase(info, self._to)  # type: ignore[return-value]

    @strawberry.field
    async def changed_by(self, info: Info) -> User:
        return await user_of(info, self._by)  # type: ignore[return-value]


@strawberry.type(description="A deal being worked through a sales pipeline.")
class Opportunity(RowBacked, Node):
    id: strawberry.ID
    version: int = strawberry.field(description="Pass as expectedVersion when changing it.")
    name: str
    amount: Decimal
    currency: str
    probability: int = strawberry.field(description="Percent, 0 to 100.")
    weighted_amount: Decimal = strawberry.field(description="amount x probability.")
    expected_close_date: date | None
    lost_reason: str | None
    closed_at: datetime | None
    days_in_phase: int = strawberry.field(description="Whole days since it entered its phase.")
    created_at: datetime
    updated_at: datetime
    _key: Private[int]
    _account_id: Private[int]
    _owner_id: Private[int]
    _pipeline_id: Private[int]
    _phase_id: Private[int]
    _offering_area_id: Private[int | None]
    _source_campaign_id: Private[int | None]

    _reads = reads(
        id=using("id")(lambda row: encode_id("Opportunity", row.id)), version="version",
        name="name",
        amount="amount", currency="currency", probability="probability",
        # Half a cent up, as the pipeline summary rounds its sums.
        weighted_amount=using("amount", "probability")(
            lambda row: (row.amount * row.probability / 100).quantize(
                resolve.CENT, rounding=ROUND_HALF_UP)),
        expected_close_date="expected_close_date", lost_reason="lost_reason",
        closed_at="closed_at", days_in_phase=using("phase_entered_at")(
            lambda row: _days_since(row.phase_entered_at)),
        created_at="created_at", updated_at="updated_at", _key="id",
        _account_id="account_id", _owner_id="owner_id", _pipeline_id="pipeline_id",
        _phase_id="phase_id", _offering_area_id="offering_area_id",
        _source_campaign_id="source_campaign_id",
    )

    @strawberry.field
    @related(UserByIdLoader, "_owner_id", User.from_row)
    async def owner(self, info: Info) -> User:
        return await user_of(info, self._owner_id)  # type: ignore[return-value]

    @strawberry.field
    @related(AccountByIdLoader, "_account_id", lambda row: account_types.Account.from_row(row))
    async def account(self, info: Info) -> Annotated[Account, strawberry.lazy("schema.accounts")]:
        row = await info.context.loaders.get(AccountByIdLoader).load(self._account_id)
        return account_types.Account.from_row(row) if row else None  # type: ignore[return-value]

    @strawberry.field
    @related(PipelineByIdLoader, "_pipeline_id", Pipeline.from_row)
    async def pipeline(self, info: Info) -> Pipeline:
        row = await info.context.loaders.get(PipelineByIdLoader).load(self._pipeline_id)
        return Pipeline.from_row(row) if row else None  # type: ignore[return-value]

    @strawberry.field
    @related(PhaseByIdLoader, "_phase_id", Phase.from_row)
    async def phase(self, info: Info) -> Phase:
        return await _phase(info, self._phase_id)  # type: ignore[return-value]

    @strawberry.field
    async def offering_area(self, info: Info) -> OfferingArea | None:
        if self._offering_area_id is None:
            return None
        row = await info.context.loaders.get(OfferingAreaByIdLoader).load(
            self._offering_area_id)
        return OfferingArea.from_row(row) if row else None

    @strawberry.field(description="The campaign the opportunity came from.")
    async def source_campaign(
        self, info: Info
    ) -> Annotated[Campaign, strawberry.lazy("schema.campaigns")] | None:
        return await campaign_types.campaign_of(info, self._source_campaign_id)

    @strawberry.field(description="Every entry into a phase, oldest first.")
    async def phase_history(self, info: Info) -> list[PhaseChange]:
        rows = await info.context.loaders.get(PhaseChangesByOpportunityLoader).load(self._key)
        return [PhaseChange.from_row(row) for row in rows]

    @strawberry.field(description="Calls, meetings and tasks about the deal.")
    async def activities(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: Annotated[ActivityFilter, strawberry.lazy("schema.activities")] | None = None,
        order_by: list[Annotated[ActivityOrder, strawberry.lazy("schema.activities")]]
        | None = None,
    ) -> Connection[Annotated[Activity, strawberry.lazy("schema.activities")]]:
        pages, counts = activity_types.OPPORTUNITY_PAGES
        return await activity_types.activity_connection(
            info, self._key, pages=pages, counts=counts, first=first, after=after, last=last,
            before=before, filter=filter, order_by=order_by)


@strawberry.type(description="A prospect worked through a marketing pipeline.")
class Lead(Node):
    id: strawberry.ID
    version: int
    company: str
    first_name: str | None
    last_name: str
    name: str
    email: str | None
    phone: str | None
    title: str | None
    source: str | None
    days_in_phase: int
    converted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    _owner_id: Private[int]
    _pipeline_id: Private[int]
    _phase_id: Private[int]
    _account_id: Private[int | None]
    _contact_id: Private[int | None]
    _opportunity_id: Private[int | None]
    _campaign_id: Private[int | None]

    @classmethod
    def from_row(cls, row: Any) -> Lead:
        full_name = f"{row.first_name} {row.last_name}" if row.first_name else row.last_name
        return cls(
            id=encode_id("Lead", row.id), version=row.version, company=row.company,
            first_name=row.first_name, last_name=row.last_name, name=full_name,
            email=row.email, phone=row.phone, title=row.title, source=row.source,
            days_in_phase=_days_since(row.phase_entered_at), converted_at=row.converted_at,
            created_at=row.created_at, updated_at=row.updated_at, _owner_id=row.owner_id,
            _pipeline_id=row.pipeline_id, _phase_id=row.phase_id,
            _account_id=row.converted_account_id, _contact_id=row.converted_contact_id,
            _opportunity_id=row.converted_opportunity_id, _campaign_id=row.campaign_id,
        )

    @strawberry.field
    async def owner(self, info: Info) -> User:
        return await user_of(info, self._owner_id)  # type: ignore[return-value]

    @strawberry.field
    async def pipeline(self, info: Info) -> Pipeline:
        row = await info.context.loaders.get(PipelineByIdLoader).load(self._pipeline_id)
        return Pipeline.from_row(row)

    @strawberry.field
    async def phase(self, info: Info) -> Phase:
        return await _phase(info, self._phase_id)  # type: ignore[return-value]

    @strawberry.field(description="The campaign the lead came from.")
    async def campaign(self, info: Info
                       ) -> Annotated[Campaign, strawberry.lazy("schema.campaigns")] | None:
        return await campaign_types.campaign_of(info, self._campaign_id)

    @strawberry.field
    async def converted_account(
        self, info: Info
    ) -> Annotated[Account, strawberry.lazy("schema.accounts")] | None:
        if self._account_id is None:
            return None
        row = await info.context.loaders.get(AccountByIdLoader).load(self._account_id)
        return account_types.Account.from_row(row) if row else None

    @strawberry.field
    async def converted_contact(
        self, info: Info
    ) -> Annotated[Contact, strawberry.lazy("schema.accounts")] | None:
        if self._contact_id is None:
            return None
        row = await info.context.loaders.get(ContactByIdLoader).load(self._contact_id)
        return account_types.Contact.from_row(row) if row else None

    @strawberry.field
    async def converted_opportunity(self, info: Info) -> Opportunity | None:
        if self._opportunity_id is None:
            return None
        row = await info.context.loaders.get(OpportunityByIdLoader).load(self._opportunity_id)
        return Opportunity.from_row(row) if row else None


# --- filters and ordering -----------------------------------------------------------------


@strawberry.input(description="Conditions on phases.")
class PhaseFilter:
    id: IDFilter | None = UNSET
    name: StringFilter | None = UNSET
    outcome: PhaseOutcomeFilter | None = UNSET  # type: ignore[valid-type]
    forecast_category: ForecastCategoryFilter | None = UNSET  # type: ignore[valid-type]


@strawberry.input(description="Conditions on opportunities; combine with and, or, not.")
class OpportunityFilter:
    id: IDFilter | None = UNSET
    name: StringFilter | None = UNSET
    amount: DecimalFilter | None = UNSET
    currency: StringFilter | None = UNSET
    probability: IntFilter | None = UNSET
    pipeline_id: IDFilter | None = UNSET
    phase_id: IDFilter | None = UNSET
    outcome: PhaseOutcomeFilter | None = UNSET  # type: ignore[valid-type]
    forecast_category: ForecastCategoryFilter | None = UNSET  # type: ignore[valid-type]
    owner_id: IDFilter | None = UNSET
    team_id: IDFilter | None = strawberry.field(default=UNSET,
                                                description="The owner's team.")
    account_id: IDFilter | None = UNSET
    offering_area_id: IDFilter | None = UNSET
    expected_close_date: DateFilter | None = UNSET
    closed_at: DateTimeFilter | None = UNSET
    created_at: DateTimeFilter | None = UNSET
    updated_at: DateTimeFilter | None = UNSET
    phase: PhaseFilter | None = UNSET
    account: Annotated[AccountFilter, strawberry.lazy("schema.accounts")] | None = UNSET
    owner: UserFilter | None = UNSET
    and_: list[OpportunityFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[OpportunityFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: OpportunityFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.input(description="Conditions on an account's opportunities.")
class OpportunityRelationFilter:
    some: OpportunityFilter | None = UNSET
    none: OpportunityFilter | None = UNSET
    every: OpportunityFilter | None = UNSET


@strawberry.enum(description="What opportunities can be ordered by.")
class OpportunityOrderField(Enum):
    NAME = "NAME"
    AMOUNT = "AMOUNT"
    PROBABILITY = "PROBABILITY"
    EXPECTED_CLOSE_DATE = "EXPECTED_CLOSE_DATE"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    ID = "ID"


@strawberry.input(description="One ordering key for opportunities; nulls sort last ascending.")
class OpportunityOrder:
    field: OpportunityOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="Conditions on leads; combine with and, or, not.")
class LeadFilter:
    id: IDFilter | None = UNSET
    company: StringFilter | None = UNSET
    first_name: StringFilter | None = UNSET
    last_name: StringFilter | None = UNSET
    email: StringFilter | None = UNSET
    source: StringFilter | None = UNSET
    owner_id: IDFilter | None = UNSET
    pipeline_id: IDFilter | None = UNSET
    phase_id: IDFilter | None = UNSET
    outcome: PhaseOutcomeFilter | None = UNSET  # type: ignore[valid-type]
    converted_at: DateTimeFilter | None = UNSET
    created_at: DateTimeFilter | None = UNSET
    owner: UserFilter | None = UNSET
    and_: list[LeadFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[LeadFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: LeadFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.enum(description="What leads can be ordered by.")
class LeadOrderField(Enum):
    COMPANY = "COMPANY"
    LAST_NAME = "LAST_NAME"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    ID = "ID"


@strawberry.input(description="One ordering key for leads.")
class LeadOrder:
    field: LeadOrderField
    direction: OrderDirection = OrderDirection.ASC


# --- the pipeline summary -----------------------------------------------------------------


@strawberry.type(description="Count and value of the opportunities in one phase.")
class PhaseSummary:
    phase: Phase
    count: int
    amount: Decimal
    weighted_amount: Decimal = strawberry.field(description="Sum of amount x probability.")


@strawberry.type(description="Count and value over several phases.")
class SummaryTotals:
    count: int
    amount: Decimal
    weighted_amount: Decimal


@strawberry.type(description="A pipeline's opportunities per phase, now or as of a date.")
class PipelineSummary:
    pipeline: Pipeline
    currency: str = strawberry.field(description="Only opportunities in this currency count.")
    as_of: date | None
    phases: list[PhaseSummary]
    totals: SummaryTotals = strawberry.field(description="Every phase.")
    open: SummaryTotals = strawberry.field(description="The OPEN phases: the live pipeline.")

    @classmethod
    def from_summary(cls, summary: resolve.Summary) -> PipelineSummary:
        def totals(figures: resolve.PhaseFigures) -> SummaryTotals:
            return SummaryTotals(count=figures.count, amount=figures.amount,
                                 weighted_amount=figures.weighted_amount)

        return cls(
            pipeline=Pipeline.from_row(summary.pipeline), currency=summary.currency,
            as_of=summary.as_of,
            phases=[PhaseSummary(phase=Phase.from_row(p.phase), count=p.count, amount=p.amount,
                                 weighted_amount=p.weighted_amount) for p in summary.phases],
            totals=totals(summary.totals()),
            open=totals(summary.totals(frozenset({PhaseOutcomeEnum.OPEN}))),
        )


# --- the live feed ------------------------------------------------------------------------


@strawberry.type(description="An opportunity entered a phase (creation and closing included).")
class PhaseChangeEvent:
    event_id: str = strawberry.field(
        description="Pass as `after` when resubscribing to miss nothing.")
    kind: PhaseChangeKind
    changed_at: datetime
    amount_delta: Decimal = strawberry.field(
        description="How the amount changed since the previous phase entry.")
    _opportunity_id: Private[int]
    _from: Private[int | None]
    _to: Private[int]
    _by: Private[int]

    @classmethod
    def from_event(cls, event: EventRecord) -> PhaseChangeEvent:
        p = event.payload
        return cls(event_id=str(event.id), kind=PhaseChangeKind(p["kind"]),
                   changed_at=datetime.fromisoformat(p["changedAt"]),
                   amount_delta=Decimal(p["amountDelta"]), _opportunity_id=p["opportunityId"],
                   _from=p["fromPhaseId"], _to=p["toPhaseId"], _by=p["changedById"])

    @strawberry.field(description="The opportunity as it is now.")
    async def opportunity(self, info: Info) -> Opportunity | None:
        row = await info.context.loaders.get(OpportunityByIdLoader).load(self._opportunity_id)
        return Opportunity.from_row(row) if row else None

    @strawberry.field
    async def from_phase(self, info: Info) -> Phase | None:
        return await _phase(info, self._from)

    @strawberry.field
    async def to_phase(self, info: Info) -> Phase:
        return await _phase(info, self._to)  # type: ignore[return-value]

    @strawberry.field
    async def changed_by(self, info: Info) -> User:
        return await user_of(info, self._by)  # type: ignore[return-value]


# --- queries ------------------------------------------------------------------------------


@strawberry.type
class OpportunityQueries:
    @strawberry.field(description="Pipelines by name, optionally of one kind.")
    async def pipelines(self, info: Info, kind: PipelineKind | None = None  # type: ignore[valid-type]
                        ) -> list[Pipeline]:
        viewer_of(info)
        rows = await resolve.list_pipelines(loaders=info.context.loaders, kind=kind)
        return [Pipeline.from_row(row) for row in rows]

    @strawberry.field
    @rows_of(OpportunityByIdLoader)
    async def opportunity(self, info: Info, id: strawberry.ID) -> Opportunity | None:
        viewer_of(info)
        row = await info.context.loaders.get(OpportunityByIdLoader).load(
            decode_id(id, "Opportunity"))
        return Opportunity.from_row(row) if row else None

    @strawberry.field(description="Opportunities the viewer may see, filtered and ordered.")
    async def opportunities(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: OpportunityFilter | None = None,
        order_by: list[OpportunityOrder] | None = None,
    ) -> Connection[Opportunity]:
        viewer_of(info)
        listing = await resolve.list_opportunities(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by, columns=planned_columns(info))
        return connection(listing.page, Opportunity.from_row, listing.total_count)

    @strawberry.field(description="Count, amount and weighted amount per phase, in SQL; with "
                      "asOf, the pipeline as it stood at the end of that day (org time zone).")
    async def pipeline_summary(
        self, info: Info, pipeline_id: strawberry.ID, filter: OpportunityFilter | None = None,
        as_of: date | None = None, currency: str = "EUR",
    ) -> PipelineSummary | None:
        viewer_of(info)
        summary = await resolve.pipeline_summary(
            loaders=info.context.loaders, pipeline_id=decode_id(pipeline_id, "Pipeline"),
            filter=filter, as_of=as_of, currency=currency,
            timezone=info.context.org_timezone)
        return PipelineSummary.from_summary(summary) if summary else None

    @strawberry.field
    @rows_of(LeadByIdLoader)
    async def lead(self, info: Info, id: strawberry.ID) -> Lead | None:
        viewer_of(info)
        row = await info.context.loaders.get(LeadByIdLoader).load(decode_id(id, "Lead"))
        return Lead.from_row(row) if row else None

    @strawberry.field(description="Leads (none for partners), filtered and ordered.")
    async def leads(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None, filter: LeadFilter | None = None,
        order_by: list[LeadOrder] | None = None,
    ) -> Connection[Lead]:
        viewer_of(info)
        listing = await lead_resolvers.list_leads(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by)
        return connection(listing.page, Lead.from_row, listing.total_count)


# --- mutations ----------------------------------------------------------------------------


@strawberry.input
class CreateOpportunityInput:
    account_id: strawberry.ID
    name: str
    amount: Decimal
    currency: str = "EUR"
    pipeline_id: strawberry.ID | None = strawberry.field(
        default=None, description="Defaults to the first SALES pipeline.")
    phase_id: strawberry.ID | None = strawberry.field(
        default=None, description="Defaults to the pipeline's first open phase.")
    probability: int | None = strawberry.field(
        default=None, description="Defaults to the phase's probability.")
    expected_close_date: date | None = None
    owner_id: strawberry.ID | None = strawberry.field(default=None,
                                                      description="Defaults to the viewer.")
    offering_area_id: strawberry.ID | None = None
    source_campaign_id: strawberry.ID | None = strawberry.field(
        default=None, description="The campaign the opportunity came from.")


@strawberry.input(description="Only the fields sent are changed; null clears a field.")
class UpdateOpportunityInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET
    amount: Decimal | None = UNSET
    currency: str | None = UNSET
    probability: int | None = UNSET
    expected_close_date: date | None = UNSET
    owner_id: strawberry.ID | None = UNSET
    offering_area_id: strawberry.ID | None = UNSET
    source_campaign_id: strawberry.ID | None = UNSET


@strawberry.input(description="Move to an open phase of the same pipeline; moving a closed "
                  "opportunity to an open phase reopens it.")
class MoveOpportunityPhaseInput:
    id: strawberry.ID
    phase_id: strawberry.ID
    expected_version: int


@strawberry.input
class CloseOpportunityWonInput:
    id: strawberry.ID
    expected_version: int
    phase_id: strawberry.ID | None = strawberry.field(
        default=None, description="Needed only when the pipeline has several WON phases.")


@strawberry.input
class CloseOpportunityLostInput:
    id: strawberry.ID
    expected_version: int
    reason: str
    phase_id: strawberry.ID | None = strawberry.field(
        default=None, description="Needed only when the pipeline has several LOST phases.")


@strawberry.type
class OpportunityPayload:
    opportunity: Opportunity | None
    user_errors: list[UserError]


@strawberry.input
class CreateLeadInput:
    company: str
    last_name: str
    first_name: str | None = None
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    source: str | None = None
    owner_id: strawberry.ID | None = None
    phase_id: strawberry.ID | None = strawberry.field(
        default=None, description="Defaults to the first MARKETING pipeline's first phase.")


@strawberry.input(description="Only the fields sent are changed; null clears a field.")
class UpdateLeadInput:
    id: strawberry.ID
    expected_version: int
    company: str | None = UNSET
    first_name: str | None = UNSET
    last_name: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET
    title: str | None = UNSET
    source: str | None = UNSET
    owner_id: strawberry.ID | None = UNSET


@strawberry.input
class MoveLeadPhaseInput:
    id: strawberry.ID
    phase_id: strawberry.ID
    expected_version: int


@strawberry.input(description="The opportunity a converted lead opens.")
class ConvertLeadOpportunityInput:
    name: str
    amount: Decimal
    currency: str = "EUR"
    phase_id: strawberry.ID | None = None
    expected_close_date: date | None = None


@strawberry.input(description="Link an existing account and contact, or leave them out to "
                  "create them from the lead.")
class ConvertLeadInput:
    id: strawberry.ID
    expected_version: int
    account_id: strawberry.ID | None = None
    contact_id: strawberry.ID | None = None
    opportunity: ConvertLeadOpportunityInput | None = None


@strawberry.type
class LeadPayload:
    lead: Lead | None
    user_errors: list[UserError]


def _opportunity_payload(outcome: Any) -> OpportunityPayload:
    return payload(OpportunityPayload, "opportunity", Opportunity.from_row, outcome)


def _lead_payload(outcome: Any) -> LeadPayload:
    return payload(LeadPayload, "lead", Lead.from_row, outcome)


@strawberry.type
class OpportunityMutations:
    @strawberry.mutation(description="Open an opportunity in its pipeline's first phase.")
    async def create_opportunity(self, info: Info, input: CreateOpportunityInput
                                 ) -> OpportunityPayload:
        return _opportunity_payload(await resolve.create_opportunity(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            account_id=input.account_id, name=input.name, amount=input.amount,
            currency=input.currency, pipeline_id=input.pipeline_id, phase_id=input.phase_id,
            probability=input.probability, expected_close_date=input.expected_close_date,
            owner_id=input.owner_id, offering_area_id=input.offering_area_id,
            source_campaign_id=input.source_campaign_id))

    @strawberry.mutation(description="Change an open opportunity's fields.")
    async def update_opportunity(self, info: Info, input: UpdateOpportunityInput
                                 ) -> OpportunityPayload:
        return _opportunity_payload(await resolve.update_opportunity(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            opportunity_id=input.id, expected_version=input.expected_version,
            changes=sent_changes(input)))

    @strawberry.mutation(description="Move an opportunity to another phase of its pipeline.")
    async def move_opportunity_phase(self, info: Info, input: MoveOpportunityPhaseInput
                                     ) -> OpportunityPayload:
        return _opportunity_payload(await resolve.move_phase(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            opportunity_id=input.id, phase_id=input.phase_id,
            expected_version=input.expected_version))

    @strawberry.mutation(description="Close an opportunity as won.")
    async def close_opportunity_won(self, info: Info, input: CloseOpportunityWonInput
                                    ) -> OpportunityPayload:
        return _opportunity_payload(await resolve.move_phase(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            opportunity_id=input.id, phase_id=input.phase_id,
            expected_version=input.expected_version, target=PhaseOutcomeEnum.WON))

    @strawberry.mutation(description="Close an opportunity as lost, with the reason.")
    async def close_opportunity_lost(self, info: Info, input: CloseOpportunityLostInput
                                     ) -> OpportunityPayload:
        return _opportunity_payload(await resolve.move_phase(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            opportunity_id=input.id, phase_id=input.phase_id,
            expected_version=input.expected_version, target=PhaseOutcomeEnum.LOST,
            lost_reason=input.reason))

    @strawberry.mutation(description="Record a new lead in a marketing pipeline.")
    async def create_lead(self, info: Info, input: CreateLeadInput) -> LeadPayload:
        return _lead_payload(await lead_resolvers.create_lead(
            viewer=viewer_of(info), db=info.context.db, company=input.company,
            last_name=input.last_name, first_name=input.first_name, email=input.email,
            phone=input.phone, title=input.title, source=input.source,
            owner_id=input.owner_id, phase_id=input.phase_id))

    @strawberry.mutation(description="Change a lead that is not converted yet.")
    async def update_lead(self, info: Info, input: UpdateLeadInput) -> LeadPayload:
        return _lead_payload(await lead_resolvers.update_lead(
            viewer=viewer_of(info), db=info.context.db, lead_id=input.id,
            expected_version=input.expected_version,
            changes=sent_changes(input)))

    @strawberry.mutation(description="Move a lead to another phase of its pipeline.")
    async def move_lead_phase(self, info: Info, input: MoveLeadPhaseInput) -> LeadPayload:
        return _lead_payload(await lead_resolvers.move_lead_phase(
            viewer=viewer_of(info), db=info.context.db, lead_id=input.id,
            phase_id=input.phase_id, expected_version=input.expected_version))

    @strawberry.mutation(description="Convert a lead into an account and a contact (linked or "
                         "created) and optionally an opportunity, all in one transaction.")
    async def convert_lead(self, info: Info, input: ConvertLeadInput) -> LeadPayload:
        new = input.opportunity
        return _lead_payload(await lead_resolvers.convert_lead(
            viewer=viewer_of(info), db=info.context.db, events=info.context.events,
            lead_id=input.id, expected_version=input.expected_version,
            account_id=input.account_id, contact_id=input.contact_id,
            opportunity=lead_resolvers.NewOpportunity(
                name=new.name, amount=new.amount, currency=new.currency,
                phase_id=new.phase_id, expected_close_date=new.expected_close_date,
            ) if new is not None else None))


# --- subscriptions ------------------------------------------------------------------------

SUMMARY_INTERVAL = 0.25


@strawberry.type
class OpportunitySubscriptions:
    @strawberry.subscription(description="Every entry of an opportunity into a phase "
                             "(creation and closing included) that the viewer may read. "
                             "With `after`, first every such event after that eventId.")
    async def opportunity_phase_changed(
        self, info: Info, pipeline_id: strawberry.ID | None = None,
        owner_id: strawberry.ID | None = None, team_id: strawberry.ID | None = None,
        account_id: strawberry.ID | None = None, after: str | None = None,
    ) -> AsyncGenerator[PhaseChangeEvent, None]:
        viewer = viewer_of(info)
        feed = FeedFilter(pipeline_id=decode_optional_id(pipeline_id, "Pipeline"),
                          owner_id=decode_optional_id(owner_id, "User"),
                          team_id=decode_optional_id(team_id, "Team"),
                          account_id=decode_optional_id(account_id, "Account"))
        try:
            async for event in resolve.phase_changes(
                viewer=viewer, db=info.context.db, events=info.context.events, feed=feed,
                after=after_event(after),
            ):
                info.context.renew_loaders()  # each event is read fresh
                yield PhaseChangeEvent.from_event(event)
        except Overflowed:
            await close_behind(info)

    @strawberry.subscription(description="The pipeline summary, sent at once and again after "
                             "every change to the pipeline, at most every 250 ms.")
    async def pipeline_summary_changed(
        self, info: Info, pipeline_id: strawberry.ID, team_id: strawberry.ID | None = None,
        currency: str = "EUR",
    ) -> AsyncGenerator[PipelineSummary, None]:
        viewer = viewer_of(info)
        pipeline = decode_id(pipeline_id, "Pipeline")
        team = decode_optional_id(team_id, "Team")
        feed = FeedFilter(pipeline_id=pipeline, team_id=team)
        summary_filter = OpportunityFilter(team_id=IDFilter(eq=team_id)) if team_id else None

        async def current() -> PipelineSummary | None:
            info.context.renew_loaders()
            summary = await resolve.pipeline_summary(
                loaders=info.context.loaders, pipeline_id=pipeline, filter=summary_filter,
                as_of=None, currency=currency, timezone=info.context.org_timezone)
            return PipelineSummary.from_summary(summary) if summary else None

        # Changes committed while the first summary is read come after this position:
        # they are replayed, not lost.
        position = await last_event_id(info.context.db)
        first = await current()
        if first is None:
            return
        yield first
        changes = resolve.phase_changes(viewer=viewer, db=info.context.db,
                                        events=info.context.events, feed=feed, after=position,
                                        kinds=resolve.ALL_CHANGES)
        try:
            async with contextlib.aclosing(bursts(changes, SUMMARY_INTERVAL)) as each:
                async for _burst in each:
                    summary = await current()
                    if summary is not None:
                        yield summary
        except Overflowed:
            await close_behind(info)
