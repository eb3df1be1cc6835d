"""Account plans: budgets and forecasts (read policy, loaders), and the figures laid
beside them (budget, forecasts, billed, won, pipeline), each aggregated in SQL per group,
month and offering area."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, case, false, func, or_, select, true, type_coerce

from loaders.base import Loader, RowByIdLoader
from loaders.billing import BILLED, INVOICE_LINES, INVOICES
from loaders.opportunities import OPPORTUNITIES, PHASES
from loaders.pricing import OFFERING_AREAS, PRODUCTS
from loaders.users import ACCOUNTS, USERS, team_accounts
from models.base import Money
from models.opportunities import PhaseOutcome
from models.planning import Budget, Forecast, ForecastKind
from models.users import Role, Viewer

BUDGETS = Budget.__table__
CENT = Decimal("0.01")
FORECASTS = Forecast.__table__


def planned_accounts(viewer: Viewer) -> Select[Any] | None:
    """The accounts whose plans the viewer reads: None for all (admins, managers); a rep
    its own and its team's accounts; partners none (an empty select)."""
    if viewer.role in (Role.ADMIN, Role.MANAGER):
        return None
    if viewer.role is Role.PARTNER:
        return select(ACCOUNTS.c.id).where(false())
    return team_accounts(viewer)


def visible_budgets(viewer: Viewer) -> ColumnElement[bool]:
    accounts = planned_accounts(viewer)
    return true() if accounts is None else BUDGETS.c.account_id.in_(accounts)


def visible_forecasts(viewer: Viewer) -> ColumnElement[bool]:
    accounts = planned_accounts(viewer)
    return true() if accounts is None else FORECASTS.c.account_id.in_(accounts)


class BudgetByIdLoader(RowByIdLoader):
    table = BUDGETS
    visibility = staticmethod(visible_budgets)


class ForecastByIdLoader(RowByIdLoader):
    table = FORECASTS
    visibility = staticmethod(visible_forecasts)


# --- months -------------------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """The first days of every month from ``first``'s month to ``last``'s, inclusive."""
    months, current = [], month_start(first)
    while current <= last:
        months.append(current)
        current = next_month(current)
    return months


def _month_index(column: Any, bounds: Sequence[Any]) -> Any:
    """Which month a value falls in, as the index of ``bounds`` (month starts, then the
    end): a CASE on both databases, so local months hold for timestamps too."""
    return case(*((column < bound, index) for index, bound in enumerate(bounds[1:])),
                else_=None)


def _local_midnights(months: Sequence[date], timezone: str) -> list[datetime]:
    zone = ZoneInfo(timezone)
    return [datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC) for day in months]


# --- figures ------------------------------------------------------------------------------


class PlanGroupBy(Enum):
    ACCOUNT = "ACCOUNT"
    OWNER = "OWNER"
    TEAM = "TEAM"
    OFFERING_AREA = "OFFERING_AREA"


FIGURES = ("budget", "fixed_forecast", "rolling_forecast", "billed", "won", "open_pipeline",
           "weighted_pipeline")


@dataclass
class Cell:
    """The figures of one group, month and offering area; None where nothing is set."""

    budget: Decimal | None = None
    fixed_forecast: Decimal | None = None
    rolling_forecast: Decimal | None = None
    billed: Decimal = Decimal(0)
    won: Decimal = Decimal(0)
    open_pipeline: Decimal = Decimal(0)
    # amount x percent / 100, rounded to cents per account, month and area.
    weighted_pipeline: Decimal = Decimal(0)


@dataclass(frozen=True)
class PlanQuery:
    accounts: Select[Any] | None  # the accounts in scope (None: every account)
    first: date
    last: date
    currency: str
    timezone: str
    group_by: PlanGroupBy = PlanGroupBy.ACCOUNT
    area_ids: tuple[int, ...] | None = None
    as_of: datetime | None = None  # forecasts submitted up to then


@dataclass
class PlanFigures:
    months: list[date]
    cells: dict[tuple[Any, int, int | None], Cell] = field(default_factory=dict)

    def cell(self, group: Any, month: int, area: int | None) -> Cell:
        key = (group, month, area)
        found = self.cells.get(key)
        if found is None:
            found = self.cells[key] = Cell()
        return found


def _group(account_column: ColumnElement[Any], area_column: ColumnElement[Any],
           group_by: PlanGroupBy) -> tuple[Any, list[ColumnElement[bool]]]:
    """The group key, and the join conditions it needs (owner and team come through the
    account: joined, so they can be grouped by on every database)."""
    if group_by is PlanGroupBy.ACCOUNT:
        return account_column, []
    if group_by is PlanGroupBy.OFFERING_AREA:
        return area_column, []
    joined = [ACCOUNTS.c.id == account_column]
    if group_by is PlanGroupBy.OWNER:
        return ACCOUNTS.c.owner_id, joined
    return USERS.c.team_id, [*joined, USERS.c.id == ACCOUNTS.c.owner_id]


async def plan_figures(db: Any, query: PlanQuery) -> PlanFigures:
    """Every figure of the plan in six aggregating statements, whatever the number of
    accounts, months and offering areas."""
    months = months_between(query.first, query.last)
    bounds = [*months, next_month(months[-1])]
    moments = _local_midnights(bounds, query.timezone)
    figures = PlanFigures(months)

    def scoped(account_column: ColumnElement[Any], area_column: ColumnElement[Any]
               ) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if query.accounts is not None:
            conditions.append(account_column.in_(query.accounts))
        if query.area_ids is not None:
            conditions.append(area_column.in_(query.area_ids))
        return conditions

    def grouped(account_column: ColumnElement[Any], area_column: ColumnElement[Any],
                month: Any, values: list[Any], conditions: list[ColumnElement[bool]],
                source: Any = None, per_account: bool = False) -> Select[Any]:
        """Sum ``values`` per group, month and area (and account, with ``per_account``).
        The keys are computed in a subquery and grouped by outside it: a CASE with bound
        values repeated in GROUP BY would not be recognised as the selected one by
        PostgreSQL."""
        group, joins = _group(account_column, area_column, query.group_by)
        inner = select(group.label("grp"), month.label("idx"), area_column.label("area"),
                       account_column.label("acct"),
                       *(value.label(f"v{n}") for n, value in enumerate(values)))
        if source is not None:
            inner = inner.select_from(source)
        rows = inner.where(*joins, *conditions,
                           *scoped(account_column, area_column)).subquery()
        keys = [rows.c.grp, rows.c.idx, rows.c.area, *([rows.c.acct] if per_account else [])]
        return (select(rows.c.grp, rows.c.idx, rows.c.area,
                       *(type_coerce(func.sum(rows.c[f"v{n}"]), Money())
                         for n in range(len(values))))
                .group_by(*keys))

    statements: list[tuple[tuple[str, ...], Select[Any]]] = []
    # Budgets and forecasts are kept per month already: their period is the month start.
    statements.append((("budget",), grouped(
        BUDGETS.c.account_id, BUDGETS.c.offering_area_id,
        _month_index(BUDGETS.c.period, bounds), [BUDGETS.c.amount],
        [BUDGETS.c.currency == query.currency, BUDGETS.c.period >= bounds[0],
         BUDGETS.c.period < bounds[-1]])))
    months_in_range = [FORECASTS.c.period >= bounds[0], FORECASTS.c.period < bounds[-1]]
    # A FIXED figure has no versions: asOf shows those that existed by then, as they are.
    fixed_then = [] if query.as_of is None else [or_(
        FORECASTS.c.created_at <= query.as_of, FORECASTS.c.submitted_at <= query.as_of)]
    statements.append((("fixed_forecast",), grouped(
        FORECASTS.c.account_id, FORECASTS.c.offering_area_id,
        _month_index(FORECASTS.c.period, bounds), [FORECASTS.c.amount],
        [FORECASTS.c.kind == ForecastKind.FIXED, FORECASTS.c.currency == query.currency,
         *months_in_range, *fixed_then])))
    # The current rolling version of each account, area and month: its latest submission
    # (as of asOf), in whatever currency; it counts when it is in the plan's.
    submitted = [] if query.as_of is None else [FORECASTS.c.submitted_at <= query.as_of]
    latest = select(
        FORECASTS.c.account_id, FORECASTS.c.offering_area_id, FORECASTS.c.period,
        FORECASTS.c.amount, FORECASTS.c.currency,
        func.row_number().over(
            partition_by=[FORECASTS.c.account_id, FORECASTS.c.offering_area_id,
                          FORECASTS.c.period],
            order_by=[FORECASTS.c.submitted_at.desc(), FORECASTS.c.id.desc()]).label("rank"),
    ).where(FORECASTS.c.kind == ForecastKind.ROLLING, *months_in_range, *submitted).subquery()
    statements.append((("rolling_forecast",), grouped(
        latest.c.account_id, latest.c.offering_area_id, _month_index(latest.c.period, bounds),
        [latest.c.amount], [latest.c.rank == 1, latest.c.currency == query.currency])))
    # Billed: SENT and PAID invoice lines, by the product's offering area.
    lines = (INVOICE_LINES.join(INVOICES, INVOICES.c.id == INVOICE_LINES.c.invoice_id)
             .outerjoin(PRODUCTS, PRODUCTS.c.id == INVOICE_LINES.c.product_id))
    statements.append((("billed",), grouped(
        INVOICES.c.account_id, PRODUCTS.c.offering_area_id,
        _month_index(INVOICES.c.invoice_date, bounds), [INVOICE_LINES.c.line_total],
        [INVOICES.c.status.in_(BILLED), INVOICES.c.currency == query.currency,
         INVOICES.c.invoice_date >= bounds[0], INVOICES.c.invoice_date < bounds[-1]],
        source=lines)))
    # Won: closed won in the month (local time); open: by expected close date.
    outcome = select(PHASES.c.outcome).where(
        PHASES.c.id == OPPORTUNITIES.c.phase_id).scalar_subquery()
    statements.append((("won",), grouped(
        OPPORTUNITIES.c.account_id, OPPORTUNITIES.c.offering_area_id,
        _month_index(OPPORTUNITIES.c.closed_at, moments), [OPPORTUNITIES.c.amount],
        [outcome == PhaseOutcome.WON, OPPORTUNITIES.c.currency == query.currency,
         OPPORTUNITIES.c.closed_at >= moments[0], OPPORTUNITIES.c.closed_at < moments[-1]])))
    statements.append((("open_pipeline", "weighted_pipeline"), grouped(
        OPPORTUNITIES.c.account_id, OPPORTUNITIES.c.offering_area_id,
        _month_index(OPPORTUNITIES.c.expected_close_date, bounds),
        [OPPORTUNITIES.c.amount, OPPORTUNITIES.c.amount * OPPORTUNITIES.c.probability],
        [outcome == PhaseOutcome.OPEN, OPPORTUNITIES.c.currency == query.currency,
         OPPORTUNITIES.c.expected_close_date >= bounds[0],
         OPPORTUNITIES.c.expected_close_date < bounds[-1]],
        # Weighted amounts are rounded per account, month and area, then added up: every
        # roll-up of the same accounts then has the same total.
        per_account=True)))

    async with db.read() as connection:
        for names, statement in statements:
            for row in await connection.execute(statement):
                if row.idx is None:
                    continue
                cell = figures.cell(row.grp, int(row.idx), row.area)
                for name, value in zip(names, row[3:], strict=True):
                    value = value or Decimal(0)
                    if name == "weighted_pipeline":
                        value = (value / 100).quantize(CENT, ROUND_HALF_UP)
                    current = getattr(cell, name)
                    setattr(cell, name, value if current is None else current + value)
    return figures


# --- an account's plan, for many accounts at once -----------------------------------------


@dataclass(frozen=True)
class AccountPlanKey:
    """What every account's plan in one batch shares (its repr keys the loader)."""

    first: date
    last: date
    currency: str
    timezone: str
    area_ids: tuple[int, ...] | None
    as_of: datetime | None


class PlanFiguresByAccountLoader(Loader):
    """Account.plan for a page of accounts: one plan_figures for all of them (six
    aggregating statements), not six per account. Each account reads its own cells."""

    def __init__(self, loaders: Any, key: AccountPlanKey) -> None:
        super().__init__(loaders)
        self.key = key

    async def batch_load_fn(self, keys: list[int]) -> list[PlanFigures]:
        key = self.key
        figures = await plan_figures(self.db, PlanQuery(
            accounts=select(ACCOUNTS.c.id).where(ACCOUNTS.c.id.in_(keys)), first=key.first,
            last=key.last, currency=key.currency, timezone=key.timezone,
            group_by=PlanGroupBy.ACCOUNT, area_ids=key.area_ids, as_of=key.as_of))
        return [figures for _ in keys]


class PlannedAccountLoader(Loader):
    """Whether the viewer may see each account's plan (planned_accounts), in one
    statement for all accounts asked about."""

    async def batch_load_fn(self, keys: list[int]) -> list[bool]:
        scope = planned_accounts(self.viewer)
        if scope is None:
            return [True for _ in keys]
        statement = select(ACCOUNTS.c.id).where(ACCOUNTS.c.id.in_(keys),
                                                ACCOUNTS.c.id.in_(scope))
        async with self.db.read() as connection:
            allowed = {row.id for row in await connection.execute(statement)}
        return [key in allowed for key in keys]


ACTIVE_AREAS = "active"  # the key for "every active offering area" (None is no key)


class PlanAreasLoader(Loader):
    """The offering areas a plan shows, by the ids asked for (ACTIVE_AREAS: every active
    one), by code; the ids that do not exist are simply absent."""

    async def batch_load_fn(self, keys: list[tuple[int, ...] | str]) -> list[list[int]]:
        async with self.db.read() as connection:
            rows = (await connection.execute(select(
                OFFERING_AREAS.c.id, OFFERING_AREAS.c.active).order_by(OFFERING_AREAS.c.code)
            )).all()
        return [[row.id for row in rows if (row.active if key == ACTIVE_AREAS else row.id in key)]
                for key in keys]
