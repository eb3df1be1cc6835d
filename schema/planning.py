"""Account plans: budgets, forecasts, the plan rows beside billing and pipeline, the
roll-ups, and the budget and forecast mutations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, cast

import strawberry
from strawberry import Private
from strawberry.types.nodes import SelectedField, Selection
from strawberry.utils.str_converters import to_camel_case

from loaders.accounts import AccountByIdLoader
from loaders.billing import Granularity as GranularityEnum
from loaders.ids import decode_id, encode_id
from loaders.planning import PlanGroupBy as PlanGroupByEnum
from loaders.pricing import OfferingAreaByIdLoader
from loaders.users import TeamByIdLoader, UserByIdLoader
from models.planning import ForecastKind as ForecastKindEnum
from resolvers import planning as resolve
from resolvers.planning import BudgetCell, PlanLine
from schema import accounts as account_types  # accounts refer back to plans
from schema.context import Info, viewer_of
from schema.errors import UserError, user_errors
from schema.periods import Granularity
from schema.pricing import OfferingArea
from schema.relay import Node, field_node_key
from schema.rows import Reads, RowList, row_maker
from schema.users import Team, User

if TYPE_CHECKING:
    from schema.accounts import Account, AccountFilter

ForecastKind = strawberry.enum(
    ForecastKindEnum, name="ForecastKind",
    description="FIXED: one figure per month, locked once the month has begun. ROLLING: "
    "every submission a new version; the latest is current.")
PlanGroupBy = strawberry.enum(PlanGroupByEnum, name="PlanGroupBy",
                              description="What planSummary rolls the plan up by.")


@strawberry.type(description="The budget of an account and offering area for a month.")
class Budget(Node):
    id: strawberry.ID
    version: int
    month: date = strawberry.field(description="The first day of the month.")
    amount: Decimal
    currency: str
    _account_id: Private[int]
    _area_id: Private[int]

    @classmethod
    def from_row(cls, row: Any) -> Budget:
        return cls(id=encode_id("Budget", row.id), version=row.version, month=row.period,
                   amount=row.amount, currency=row.currency, _account_id=row.account_id,
                   _area_id=row.offering_area_id)

    @strawberry.field
    async def account(self, info: Info
                      ) -> Annotated[Account, strawberry.lazy("schema.accounts")] | None:
        return await _account(info, self._account_id)

    @strawberry.field
    async def offering_area(self, info: Info) -> OfferingArea | None:
        return await _area(info, self._area_id)


@strawberry.type(description="A forecast of an account and offering area for a month.")
class Forecast(Node):
    id: strawberry.ID
    version: int
    month: date
    amount: Decimal
    currency: str
    kind: ForecastKind  # type: ignore[valid-type]
    submitted_at: datetime
    _account_id: Private[int]
    _area_id: Private[int]
    _by: Private[int]

    @classmethod
    def from_row(cls, row: Any) -> Forecast:
        return cls(id=encode_id("Forecast", row.id), version=row.version, month=row.period,
                   amount=row.amount, currency=row.currency, kind=row.kind,
                   submitted_at=row.submitted_at, _account_id=row.account_id,
                   _area_id=row.offering_area_id, _by=row.submitted_by_id)

    @strawberry.field
    async def account(self, info: Info
                      ) -> Annotated[Account, strawberry.lazy("schema.accounts")] | None:
        return await _account(info, self._account_id)

    @strawberry.field
    async def offering_area(self, info: Info) -> OfferingArea | None:
        return await _area(info, self._area_id)

    @strawberry.field
    async def submitted_by(self, info: Info) -> User | None:
        row = await info.context.loaders.get(UserByIdLoader).load(self._by)
        return User.from_row(row) if row else None


@strawberry.type(description="One rolling version of a month's forecast.")
class ForecastVersion:
    forecast: Forecast
    current: bool = strawberry.field(description="The latest submission: the one plans use.")


async def _account(info: Info, key: int | None) -> Any:
    if key is None:
        return None
    row = await info.context.loaders.get(AccountByIdLoader).load(key)
    return account_types.Account.from_row(row) if row else None


async def _area(info: Info, key: int | None) -> OfferingArea | None:
    if key is None:
        return None
    row = await info.context.loaders.get(OfferingAreaByIdLoader).load(key)
    return OfferingArea.from_row(row) if row else None


@strawberry.type(description="Budget, forecast, billed, won and pipeline of one period side "
                 "by side. Amounts in the plan's currency; null where nothing is set.")
class PlanRow:
    # A row is its plan line as it is (from_line): the columns not computed, which its
    # reader does not select, keep these defaults; and the private fields are named as
    # the line names them.
    period: date = strawberry.field(description="The first day of the period.")
    budget: Decimal | None = None
    forecast: Decimal | None = strawberry.field(
        default=None,
        description="The current ROLLING version where there is one, else the FIXED figure "
        "(or the kind asked for with forecastKind).")
    forecast_kind: ForecastKind | None = strawberry.field(  # type: ignore[valid-type]
        default=None,
        description="The kind `forecast` is; null without one, or where months of the "
        "period use different kinds.")
    fixed_forecast: Decimal | None = None
    rolling_forecast: Decimal | None = strawberry.field(
        default=None, description="The current rolling versions.")
    billed: Decimal = strawberry.field(default=resolve.ZERO,
                                       description="SENT and PAID invoice lines.")
    won: Decimal = strawberry.field(default=resolve.ZERO,
                                    description="Opportunities closed won in the period.")
    open_pipeline: Decimal = strawberry.field(
        default=resolve.ZERO, description="Open opportunities expected to close in the period.")
    weighted_pipeline: Decimal = strawberry.field(default=resolve.ZERO,
                                                  description="openPipeline x probability.")
    budget_variance: Decimal | None = strawberry.field(default=None,
                                                       description="forecast - budget.")
    billed_to_budget: float | None = strawberry.field(default=None,
                                                      description="billed / budget.")
    group: Private[Any] = None
    group_by: Private[PlanGroupByEnum | None] = None
    area_id: Private[int | None] = None

    # How each field is read from the row's line (below the class).
    _reads: ClassVar[Reads]

    @classmethod
    @row_maker
    def from_line(cls, line: PlanLine) -> PlanRow:
        # Not the dataclass __init__ of fifteen arguments: a line holds only what its
        # reader selects.
        row = object.__new__(cls)
        row.__dict__ = line
        return row

    @classmethod
    def of_lines(cls, lines: list[PlanLine]) -> list[PlanRow]:
        """The rows of a plan's lines, made when read: a page of accounts' plans has
        thousands, and a compiled plan completes them from their lines (RowList)."""
        return cast("list[PlanRow]", RowList(lines, cls.from_line))

    @strawberry.field(description="Per offering area rows; null in other roll-ups.")
    async def offering_area(self, info: Info) -> OfferingArea | None:
        return await _area(info, self.area_id)

    @strawberry.field(description="The account of a row grouped by ACCOUNT.")
    async def account(self, info: Info
                      ) -> Annotated[Account, strawberry.lazy("schema.accounts")] | None:
        if self.group_by is not PlanGroupByEnum.ACCOUNT:
            return None
        return await _account(info, self.group)

    @strawberry.field(description="The account owner of a row grouped by OWNER.")
    async def owner(self, info: Info) -> User | None:
        if self.group_by is not PlanGroupByEnum.OWNER:
            return None
        row = await info.context.loaders.get(UserByIdLoader).load(self.group)
        return User.from_row(row) if row else None

    @strawberry.field(description="The owner's team of a row grouped by TEAM.")
    async def team(self, info: Info) -> Team | None:
        if self.group_by is not PlanGroupByEnum.TEAM or self.group is None:
            return None
        row = await info.context.loaders.get(TeamByIdLoader).load(self.group)
        return Team.from_row(row) if row else None


# A row's line holds every column computed, and the columns its reader selects are
# computed: a compiled plan reads them straight from a RowList's lines. (A line missing
# one would raise KeyError there, and its row be made and read as an object: the
# class's default.)
_LINE_FIELDS = [field.python_name for field in PlanRow.__strawberry_definition__.fields
                if field.base_resolver is None]
PlanRow._reads = Reads({name: itemgetter(name) for name in _LINE_FIELDS}, {},
                       {name: f"row[{name!r}]" for name in _LINE_FIELDS})


@strawberry.type(description="The columns of a plan summed over its rows.")
class PlanTotals:
    # The columns not computed, which its reader does not select, keep these defaults.
    budget: Decimal | None = None
    forecast: Decimal | None = None
    fixed_forecast: Decimal | None = None
    rolling_forecast: Decimal | None = None
    billed: Decimal = resolve.ZERO
    won: Decimal = resolve.ZERO
    open_pipeline: Decimal = resolve.ZERO
    weighted_pipeline: Decimal = resolve.ZERO
    budget_variance: Decimal | None = None
    billed_to_budget: float | None = None

    @classmethod
    def from_line(cls, line: PlanLine) -> PlanTotals:
        return cls(**line)


@strawberry.type(description="An account's plan: a row per period and offering area.")
class AccountPlan:
    currency: str
    rows: list[PlanRow]
    totals: PlanTotals


@strawberry.type(description="The plan rolled up: a row per group and period.")
class PlanSummary:
    group_by: PlanGroupBy  # type: ignore[valid-type]
    currency: str
    rows: list[PlanRow]
    totals: PlanTotals


# The plan columns by the names of the PlanRow and PlanTotals fields that show them.
_COLUMNS = {to_camel_case(column): column for column in resolve.COLUMNS}


def _fields(selections: list[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection set, fragments opened."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from _fields(selection.selections)


def plan_columns(info: Info, parts: tuple[str, ...] = ("rows", "totals")) -> frozenset[str]:
    """The columns (PlanRow and PlanTotals fields) a plan field's selection reads in its
    ``parts``: only they are computed. Fields under @skip or @include count as read, so
    they depend on the field's node alone: worked out once per operation (a page of
    accounts' plans asks a hundred times)."""
    memo = getattr(info.context, "selections", None)
    key = ("plan_columns", parts, field_node_key(info))
    columns: frozenset[str] | None = memo.get(key) if memo is not None else None
    if columns is None:
        columns = frozenset(
            _COLUMNS[field.name]
            for plan in _fields(info.selected_fields)
            for part in _fields(plan.selections) if part.name in parts
            for field in _fields(part.selections) if field.name in _COLUMNS)
        if memo is not None:
            memo[key] = columns
    return columns


async def account_plan_field(info: Info, account_id: int, first: date, last: date,
                             granularity: GranularityEnum, area_ids: list[strawberry.ID] | None,
                             currency: str, forecast_kind: ForecastKindEnum | None,
                             as_of: date | None) -> AccountPlan:
    """accountPlan and Account.plan."""
    plan = await resolve.account_plan(
        loaders=info.context.loaders, account_id=account_id, first=first, last=last,
        granularity=granularity,
        area_ids=[decode_id(i, "OfferingArea") for i in area_ids] if area_ids else None,
        currency=currency, forecast_kind=forecast_kind, as_of=as_of,
        timezone=info.context.org_timezone, columns=plan_columns(info),
        totals=plan_columns(info, ("totals",)))
    return AccountPlan(currency=currency, rows=PlanRow.of_lines(plan.rows),
                       totals=PlanTotals.from_line(plan.totals))


FromDate = Annotated[date, strawberry.argument(name="from")]


@strawberry.type
class PlanningQueries:
    @strawberry.field(description="An account's plan from `from` to `to` (months of both "
                      "included), per period and offering area (every active one unless "
                      "offeringAreaIds), in one currency. asOf: forecasts as they stood at "
                      "the end of that day.")
    async def account_plan(
        self, info: Info, account_id: strawberry.ID, from_: FromDate, to: date,
        granularity: Granularity = GranularityEnum.MONTH,  # type: ignore[valid-type]
        offering_area_ids: list[strawberry.ID] | None = None, currency: str = "EUR",
        forecast_kind: ForecastKind | None = None,  # type: ignore[valid-type]
        as_of: date | None = None,
    ) -> AccountPlan:
        viewer_of(info)
        return await account_plan_field(info, decode_id(account_id, "Account"), from_, to,
                                        granularity, offering_area_ids, currency,
                                        forecast_kind, as_of)

    @strawberry.field(description="The plan columns per account, owner, team or offering area "
                      "and period, over the accounts the filter picks (a rep: its own and "
                      "its team's). asOf: forecasts as they stood at the end of that day.")
    async def plan_summary(
        self, info: Info, group_by: PlanGroupBy, from_: FromDate,  # type: ignore[valid-type]
        to: date,
        filter: Annotated[AccountFilter, strawberry.lazy("schema.accounts")] | None = None,
        granularity: Granularity = GranularityEnum.MONTH,  # type: ignore[valid-type]
        currency: str = "EUR", as_of: date | None = None,
        forecast_kind: ForecastKind | None = None,  # type: ignore[valid-type]
    ) -> PlanSummary:
        viewer_of(info)
        plan = await resolve.plan_summary(
            loaders=info.context.loaders, group_by=group_by, filter=filter, first=from_,
            last=to, granularity=granularity, currency=currency, as_of=as_of,
            forecast_kind=forecast_kind, timezone=info.context.org_timezone,
            columns=plan_columns(info))
        return PlanSummary(group_by=group_by, currency=currency,
                           rows=PlanRow.of_lines(plan.rows),
                           totals=PlanTotals.from_line(plan.totals))

    @strawberry.field(description="Every rolling version of one month's forecast, oldest "
                      "first.")
    async def forecast_history(self, info: Info, account_id: strawberry.ID,
                               offering_area_id: strawberry.ID, period: date
                               ) -> list[ForecastVersion]:
        viewer_of(info)
        versions = await resolve.forecast_history(
            loaders=info.context.loaders, account_id=decode_id(account_id, "Account"),
            area_id=decode_id(offering_area_id, "OfferingArea"), period=period)
        return [ForecastVersion(forecast=Forecast.from_row(v.row), current=v.current)
                for v in versions]


# --- mutations ----------------------------------------------------------------------------


@strawberry.input(description="One cell of a budget grid.")
class BudgetCellInput:
    account_id: strawberry.ID
    offering_area_id: strawberry.ID
    month: date = strawberry.field(description="The first day of the month.")
    amount: Decimal


@strawberry.input(description="A grid of budgets, created or replaced in one transaction.")
class SetBudgetsInput:
    currency: str = "EUR"
    cells: list[BudgetCellInput] = strawberry.field(default_factory=list)


@strawberry.input
class DeleteBudgetInput:
    id: strawberry.ID
    expected_version: int


@strawberry.input(description="FIXED: the figures of the months from fromMonth on (each "
                  "locked once its month has begun). ROLLING: a new version of each month "
                  "from fromMonth on, one amount per month.")
class SubmitForecastInput:
    account_id: strawberry.ID
    offering_area_id: strawberry.ID
    kind: ForecastKind  # type: ignore[valid-type]
    from_month: date = strawberry.field(description="The first day of the first month.")
    amounts: list[Decimal]
    currency: str = "EUR"


@strawberry.type
class BudgetsPayload:
    budgets: list[Budget]
    user_errors: list[UserError]


@strawberry.type
class DeleteBudgetPayload:
    deleted_budget_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class ForecastPayload:
    forecasts: list[Forecast]
    user_errors: list[UserError]


@strawberry.type
class PlanningMutations:
    @strawberry.mutation(description="Create or replace a grid of budgets (accounts x "
                         "offering areas x months): all of it or nothing.")
    async def set_budgets(self, info: Info, input: SetBudgetsInput) -> BudgetsPayload:
        outcome = await resolve.set_budgets(
            viewer=viewer_of(info), db=info.context.db, currency=input.currency,
            cells=[BudgetCell(c.account_id, c.offering_area_id, c.month, c.amount)
                   for c in input.cells])
        return BudgetsPayload(budgets=[Budget.from_row(b) for b in outcome.value or []],
                              user_errors=user_errors(outcome.errors))

    @strawberry.mutation
    async def delete_budget(self, info: Info, input: DeleteBudgetInput) -> DeleteBudgetPayload:
        outcome = await resolve.delete_budget(
            viewer=viewer_of(info), db=info.context.db, budget_id=input.id,
            expected_version=input.expected_version)
        return DeleteBudgetPayload(
            deleted_budget_id=input.id if outcome.value is not None else None,
            user_errors=user_errors(outcome.errors))

    @strawberry.mutation(description="Submit a FIXED or ROLLING forecast for months from "
                         "fromMonth on.")
    async def submit_forecast(self, info: Info, input: SubmitForecastInput) -> ForecastPayload:
        outcome = await resolve.submit_forecast(
            viewer=viewer_of(info), db=info.context.db, timezone=info.context.org_timezone,
            account_id=input.account_id, offering_area_id=input.offering_area_id,
            kind=input.kind, from_month=input.from_month, amounts=input.amounts,
            currency=input.currency)
        return ForecastPayload(forecasts=[Forecast.from_row(f) for f in outcome.value or []],
                               user_errors=user_errors(outcome.errors))
