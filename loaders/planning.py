"""Account plans: budgets and forecasts (read policy, loaders), and the figures laid
beside them (budget, forecasts, billed, won, pipeline), each aggregated in SQL per group,
month and offering area."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Select,
    all_,
    bindparam,
    case,
    false,
    func,
    literal,
    or_,
    select,
    true,
    type_coerce,
    union,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from loaders.base import Loader, RowByIdLoader
from loaders.billing import BILLED, INVOICE_LINES, INVOICES
from loaders.opportunities import OPPORTUNITIES, PHASES
from loaders.pricing import OFFERING_AREAS, PRODUCTS
from loaders.query import among, none_of, one_of
from loaders.users import ACCOUNTS, USERS, team_accounts
from models.base import Money
from models.db import Read
from models.opportunities import PhaseOutcome
from models.planning import Budget, Forecast, ForecastKind
from models.users import Role, Viewer

BUDGETS = Budget.__table__
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


class _HalfUpCents(FunctionElement[Decimal]):
    """A sum of amounts x percent as money: divided by 100 and rounded to cents, half
    away from zero (Python's ROUND_HALF_UP)."""

    name = "half_up_cents"
    inherit_cache = True


@compiles(_HalfUpCents)
def _half_up_cents(element: _HalfUpCents, compiler: Any, **kw: Any) -> str:
    return f"round({compiler.process(element.clauses, **kw)} / 100, 2)"


@compiles(_HalfUpCents, "sqlite")
def _half_up_cents_sqlite(element: _HalfUpCents, compiler: Any, **kw: Any) -> str:
    # Money is an integer of ten-thousandths there (models.base.Money): amount x percent
    # is in millionths, a cent is 10,000 of them; the answer is in ten-thousandths again.
    value = compiler.process(element.clauses, **kw)
    return (f"(CASE WHEN {value} < 0 THEN -((5000 - {value}) / 10000) "
            f"ELSE ({value} + 5000) / 10000 END * 100)")


class _AsText(FunctionElement[str]):
    """A sum sent as its text on PostgreSQL (where it is NUMERIC); as it is elsewhere."""

    name = "as_text"
    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type  # its result processor: Money's on SQLite


@compiles(_AsText)
def _as_text(element: _AsText, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


@compiles(_AsText, "sqlite")
def _as_text_sqlite(element: _AsText, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


class _MoneySum(Money):
    """A sum of amounts, which the plan rounds to cents itself (_add_sums makes each a
    Decimal): on asyncpg its text, without Money's presentation of each value. A page of
    accounts' plans reads thousands: asyncpg's decoding of NUMERIC took 2.9 ms of CPU
    for 6,000, its text 1.2 ms and ``Decimal()`` of it 0.6 ms more."""

    cache_ok = True

    def column_expression(self, column: Any) -> Any:
        return _AsText(column)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)


_NONE = Decimal(0)  # a figure without records
_NO_GROUP = object()


class PlanGroupBy(Enum):
    ACCOUNT = "ACCOUNT"
    OWNER = "OWNER"
    TEAM = "TEAM"
    OFFERING_AREA = "OFFERING_AREA"


FIGURES = ("budget", "fixed_forecast", "rolling_forecast", "billed", "won", "open_pipeline",
           "weighted_pipeline")
ALL_FIGURES = frozenset(FIGURES)


# A cell of a plan: a month (its index among the plan's) and an offering area.
CellKey = tuple[int, int | None]
# A group's figures: by figure, the value of each cell where the group has records of it
# (budget and forecasts None elsewhere, the other figures zero). Under FOUND, the cells
# of the figures not read (their values None): a cell exists wherever its group has a
# record of any figure. By figure, not by cell: a page of accounts' plans has thousands
# of cells, and an object per cell cost more than the figures it held.
GroupFigures = dict[str, dict[CellKey, Decimal | None]]
FOUND = "found"


def cell_keys(figures: GroupFigures) -> set[CellKey]:
    """Every cell of a group: wherever it has a record of any figure."""
    keys: set[CellKey] = set()
    for values in figures.values():
        keys.update(values)
    return keys


@dataclass(frozen=True)
class PlanQuery:
    # The accounts in scope: their ids, a select of them, or None for every account.
    accounts: tuple[int, ...] | Select[Any] | None
    first: date
    last: date
    currency: str
    timezone: str
    group_by: PlanGroupBy = PlanGroupBy.ACCOUNT
    area_ids: tuple[int, ...] | None = None
    as_of: datetime | None = None  # forecasts submitted up to then
    # The figures read: the others stay as they are without records. A cell still exists
    # wherever its group has a record of any figure, so a plan has the same rows whatever
    # it reads; except in shown_areas, whose rows the caller shows anyway (ACTIVE_AREAS:
    # every active offering area, as the statement finds them).
    figures: frozenset[str] = ALL_FIGURES
    shown_areas: tuple[int, ...] | str = ()


@dataclass
class PlanFigures:
    months: list[date]
    groups: dict[Any, GroupFigures] = field(default_factory=dict)


@dataclass(frozen=True)
class _Source:
    """What one aggregating statement sums: its figures, from which rows."""

    figures: tuple[str, ...]
    account: ColumnElement[Any]
    area: ColumnElement[Any]
    month: Any  # the month index of a row
    values: tuple[Any, ...]
    conditions: tuple[ColumnElement[bool], ...]
    joined: Any = None  # the FROM clause, where the columns do not make it
    # The last value is amount x percent: divided by 100 and rounded to cents per
    # account, month and area, then added up, so every roll-up of the same accounts has
    # the same total.
    weighted: bool = False
    # The accounts in scope are a condition inside already (the rolling window's
    # subquery): said again outside, PostgreSQL counted them twice in its estimates
    # and scanned a year of every account's forecasts (25 ms instead of 2).
    scoped: bool = False
    # Rows in none of the given offering areas, where the area column is a slow way to
    # tell (an invoice line's is its product's: PostgreSQL scanned every line): those
    # of any of the conditions, each read by a statement of its own.
    outside_of: Callable[[tuple[int, ...] | str, str], tuple[ColumnElement[bool], ...]] | None \
        = None
    # One row per account, offering area and month (a budget): an account's plan reads
    # the rows as its cells, without PostgreSQL's GROUP BY (a page of accounts' budgets,
    # 3.5 -> 1.4 ms); _add_sums adds up any two of one cell all the same.
    per_cell: bool = False


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


def _lines_outside(shown: tuple[int, ...] | str, dialect: str
                   ) -> tuple[ColumnElement[bool], ...]:
    """Invoice lines in none of the ``shown`` offering areas: free text, or a product
    of another area or of none (a line's product always exists). Two statements, not
    one with OR: PostgreSQL finds each through an index (a page of accounts, none
    found: 0.05 ms), where the OR had it filter every line of every invoice (2.6 ms)."""
    return (INVOICE_LINES.c.product_id.is_(None), INVOICE_LINES.c.product_id.in_(
        select(PRODUCTS.c.id).where(_outside(PRODUCTS.c.offering_area_id, shown, dialect))))


def _outside(area: ColumnElement[Any], shown: tuple[int, ...] | str, dialect: str
             ) -> ColumnElement[bool]:
    """``area`` none of the ``shown`` offering areas, or none at all."""
    if shown != ACTIVE_AREAS:
        return or_(area.is_(None), none_of(area, shown))
    active = select(OFFERING_AREAS.c.id).where(OFFERING_AREAS.c.active)
    if dialect != "postgresql":
        return or_(area.is_(None), area.not_in(active))
    # ``<> ALL`` an array computed once (an InitPlan): PostgreSQL applies it inside the
    # rolling forecasts' window, which a NOT IN (a SubPlan) left to after ranking every
    # version (a page of accounts: 4.3 -> 2.2 ms).
    ids = select(func.array_agg(OFFERING_AREAS.c.id)).where(
        OFFERING_AREAS.c.active).scalar_subquery()
    return or_(area.is_(None), area != all_(func.coalesce(ids, literal([], ARRAY(Integer)))))


def _sources(query: PlanQuery, bounds: list[Any], moments: list[Any], dialect: str
             ) -> list[_Source]:
    currency, as_of = bindparam("plan_currency"), bindparam("plan_as_of")
    # Budgets and forecasts are kept per month already: their period is the month start.
    budget = _Source(
        ("budget",), BUDGETS.c.account_id, BUDGETS.c.offering_area_id,
        _month_index(BUDGETS.c.period, bounds), (BUDGETS.c.amount,),
        (BUDGETS.c.currency == currency, BUDGETS.c.period >= bounds[0],
         BUDGETS.c.period < bounds[-1]), per_cell=True)
    months_in_range = (FORECASTS.c.period >= bounds[0], FORECASTS.c.period < bounds[-1])
    # A FIXED figure has no versions: asOf shows those that existed by then, as they are.
    fixed_then = () if query.as_of is None else (or_(
        FORECASTS.c.created_at <= as_of, FORECASTS.c.submitted_at <= as_of),)
    fixed = _Source(
        ("fixed_forecast",), FORECASTS.c.account_id, FORECASTS.c.offering_area_id,
        _month_index(FORECASTS.c.period, bounds), (FORECASTS.c.amount,),
        (FORECASTS.c.kind == ForecastKind.FIXED, FORECASTS.c.currency == currency,
         *months_in_range, *fixed_then))
    # The current rolling version of each account, area and month: its latest submission
    # (as of asOf), in whatever currency; it counts when it is in the plan's.
    submitted = [] if query.as_of is None else [FORECASTS.c.submitted_at <= as_of]
    # The accounts in scope inside the window's subquery too: PostgreSQL does not push
    # an IN (subquery) into it, and would rank every account's versions (~40 ms at the
    # bench's scale) to keep a hundred accounts' of them.
    if query.accounts is not None:
        submitted.append(_among_accounts(FORECASTS.c.account_id, query, dialect))
    latest = select(
        FORECASTS.c.account_id, FORECASTS.c.offering_area_id, FORECASTS.c.period,
        FORECASTS.c.amount, FORECASTS.c.currency,
        func.row_number().over(
            partition_by=[FORECASTS.c.account_id, FORECASTS.c.offering_area_id,
                          FORECASTS.c.period],
            order_by=[FORECASTS.c.submitted_at.desc(), FORECASTS.c.id.desc()]).label("rank"),
    ).where(FORECASTS.c.kind == ForecastKind.ROLLING, *months_in_range, *submitted).subquery()
    rolling = _Source(
        ("rolling_forecast",), latest.c.account_id, latest.c.offering_area_id,
        _month_index(latest.c.period, bounds), (latest.c.amount,),
        (latest.c.rank == 1, latest.c.currency == currency), scoped=True)
    # Billed: SENT and PAID invoice lines, by the product's offering area.
    billed = _Source(
        ("billed",), INVOICES.c.account_id, PRODUCTS.c.offering_area_id,
        _month_index(INVOICES.c.invoice_date, bounds), (INVOICE_LINES.c.line_total,),
        (one_of(INVOICES.c.status, BILLED), INVOICES.c.currency == currency,
         INVOICES.c.invoice_date >= bounds[0], INVOICES.c.invoice_date < bounds[-1]),
        joined=INVOICE_LINES.join(INVOICES, INVOICES.c.id == INVOICE_LINES.c.invoice_id)
        .outerjoin(PRODUCTS, PRODUCTS.c.id == INVOICE_LINES.c.product_id),
        outside_of=_lines_outside)
    # Won: closed won in the month (local time); open: by expected close date.
    outcome = select(PHASES.c.outcome).where(
        PHASES.c.id == OPPORTUNITIES.c.phase_id).scalar_subquery()
    won = _Source(
        ("won",), OPPORTUNITIES.c.account_id, OPPORTUNITIES.c.offering_area_id,
        _month_index(OPPORTUNITIES.c.closed_at, moments), (OPPORTUNITIES.c.amount,),
        (outcome == PhaseOutcome.WON, OPPORTUNITIES.c.currency == currency,
         OPPORTUNITIES.c.closed_at >= moments[0], OPPORTUNITIES.c.closed_at < moments[-1]))
    pipeline = _Source(
        ("open_pipeline", "weighted_pipeline"), OPPORTUNITIES.c.account_id,
        OPPORTUNITIES.c.offering_area_id,
        _month_index(OPPORTUNITIES.c.expected_close_date, bounds),
        (OPPORTUNITIES.c.amount, OPPORTUNITIES.c.amount * OPPORTUNITIES.c.probability),
        (outcome == PhaseOutcome.OPEN, OPPORTUNITIES.c.currency == currency,
         OPPORTUNITIES.c.expected_close_date >= bounds[0],
         OPPORTUNITIES.c.expected_close_date < bounds[-1]),
        weighted=True)
    return [budget, fixed, rolling, billed, won, pipeline]


@dataclass(frozen=True)
class _Statements:
    """A plan's statements: one per kind of record read, with the figures it sums; and
    one for the cells the unread kinds would have made (None: no need)."""

    sums: list[tuple[tuple[str, ...], Select[Any] | Read]]
    keys: Select[Any] | Read | None

    def for_driver(self) -> _Statements:
        """The same, each a Read: compiled once, then sent by the driver itself. Through
        SQLAlchemy, the keys' statement of a page of accounts' plan took 2.3 ms of our CPU
        to return no rows, and with the sums 17.6 ms against 15.5 on the driver."""
        return _Statements([(names, Read(statement)) for names, statement in self.sums],
                           None if self.keys is None else Read(self.keys))


ACCOUNT_IDS = "plan_account_ids"


def _among_accounts(column: ColumnElement[Any], query: PlanQuery, dialect: str
                    ) -> ColumnElement[bool]:
    """``column`` among the plan's accounts: their ids as a parameter, on PostgreSQL one
    array (the same text whatever their number, nothing expanded per run); or the
    accounts a filter selects (a subquery)."""
    if not isinstance(query.accounts, tuple):
        return column.in_(query.accounts)
    return among(column, dialect, ACCOUNT_IDS)


def _statements(query: PlanQuery, months: int, dialect: str) -> _Statements:
    """The statements of a plan of ``months`` months: its months' bounds, currency,
    asOf and account ids are parameters (_parameters), so that plans that differ only
    in them share their statements (_cached_statements)."""
    bounds = [bindparam(f"plan_bound{n}") for n in range(months + 1)]
    moments = [bindparam(f"plan_moment{n}") for n in range(months + 1)]
    sources = _sources(query, bounds, moments, dialect)

    def rows(source: _Source, *conditions: ColumnElement[bool], values: bool = True) -> Any:
        """The source's rows in scope with their keys (and values). The keys are computed
        in a subquery and grouped by outside it: a CASE with bound values repeated in
        GROUP BY would not be recognised as the selected one by PostgreSQL."""
        group, joins = _group(source.account, source.area, query.group_by)
        inner = select(group.label("grp"), source.month.label("idx"),
                       source.area.label("area"), source.account.label("acct"),
                       *(value.label(f"v{n}") for n, value in enumerate(source.values)
                         if values))
        if source.joined is not None:
            inner = inner.select_from(source.joined)
        if query.accounts is not None and not source.scoped:
            inner = inner.where(_among_accounts(source.account, query, dialect))
        if query.area_ids is not None:
            inner = inner.where(one_of(source.area, query.area_ids))
        return inner.where(*joins, *source.conditions, *conditions).subquery()

    def sums(source: _Source) -> Select[Any]:
        found = rows(source)
        values = [found.c[f"v{n}"] for n in range(len(source.values))]
        if source.per_cell and query.group_by is PlanGroupBy.ACCOUNT:
            return select(found.c.grp, found.c.idx, found.c.area,
                          *(type_coerce(value, _MoneySum()) for value in values))
        if source.weighted:
            keys = [found.c.grp, found.c.idx, found.c.area]
            found = select(*keys, *(func.sum(value).label(value.key) for value in values[:-1]),
                           _HalfUpCents(func.sum(values[-1])).label(values[-1].key),
                           ).group_by(*keys, found.c.acct).subquery()
            values = [found.c[value.key] for value in values]
        return select(found.c.grp, found.c.idx, found.c.area,
                      *(type_coerce(func.sum(value), _MoneySum()) for value in values)
                      ).group_by(found.c.grp, found.c.idx, found.c.area)

    def keys(source: _Source) -> list[Select[Any]]:
        shown = query.shown_areas
        outside: tuple[ColumnElement[bool] | None, ...] = (None,) if not shown else \
            source.outside_of(shown, dialect) if source.outside_of is not None else \
            (_outside(source.area, shown, dialect),)
        return [select(found.c.grp, found.c.idx, found.c.area) for found in (
            rows(source, *(() if condition is None else (condition,)), values=False)
            for condition in outside)]

    read = [source for source in sources if not query.figures.isdisjoint(source.figures)]
    unread = [source for source in sources if query.figures.isdisjoint(source.figures)]
    if query.area_ids is not None and query.shown_areas != ACTIVE_AREAS and \
            set(query.area_ids) <= set(query.shown_areas):
        unread = []  # every row the unread figures could make is shown anyway
    return _Statements([(source.figures, sums(source)) for source in read],
                       union(*(select_ for source in unread for select_ in keys(source)))
                       if unread else None)


# Statements of plans whose accounts are given by id, by everything else that shapes
# them: building them (a CASE per kind of record, subqueries, a union) cost a plan of a
# page of accounts more CPU than PostgreSQL's answer.
_STATEMENTS: dict[tuple[Any, ...], _Statements] = {}
STATEMENT_CACHE_SIZE = 1_000


def _cached_statements(query: PlanQuery, months: int, dialect: str) -> _Statements:
    if not isinstance(query.accounts, tuple):
        return _statements(query, months, dialect)  # an account filter: its own statement
    key = (dialect, months, query.group_by, query.area_ids, query.as_of is None,
           query.figures, query.shown_areas)
    statements = _STATEMENTS.get(key)
    if statements is None:
        if len(_STATEMENTS) >= STATEMENT_CACHE_SIZE:
            del _STATEMENTS[next(iter(_STATEMENTS))]
        statements = _STATEMENTS[key] = _statements(query, months, dialect).for_driver()
    return statements


def _parameters(query: PlanQuery, bounds: list[date]) -> dict[str, Any]:
    parameters: dict[str, Any] = {"plan_currency": query.currency, "plan_as_of": query.as_of}
    if isinstance(query.accounts, tuple):
        parameters[ACCOUNT_IDS] = list(query.accounts)
    for n, (bound, moment) in enumerate(zip(
            bounds, _local_midnights(bounds, query.timezone), strict=True)):
        parameters[f"plan_bound{n}"] = bound
        parameters[f"plan_moment{n}"] = moment
    return parameters


async def plan_figures(db: Any, query: PlanQuery) -> PlanFigures:
    """The figures of the plan asked for in one aggregating statement per kind of record
    (six for all of them), and one more for the rows the others would have made,
    whatever the number of accounts, months and offering areas."""
    months = months_between(query.first, query.last)
    figures = PlanFigures(months)
    statements = _cached_statements(query, len(months), db.dialect)
    if not statements.sums and statements.keys is None:
        return figures
    parameters = _parameters(query, [*months, next_month(months[-1])])
    # The cells of the figures not read are found beside the sums, on a connection of
    # their own: PostgreSQL works on both at once (a page of accounts' plan, ~28 -> ~21
    # ms). One statement at a time otherwise: a roll-up's six would take six
    # connections of the pool.
    keys = None if statements.keys is None else \
        asyncio.ensure_future(_rows(db, statements.keys, parameters))
    try:
        for names, statement in statements.sums:
            _add_sums(figures.groups, names, await _rows(db, statement, parameters))
        found = [] if keys is None else await keys
    except BaseException:
        if keys is not None:
            await _dropped(keys)
        raise
    groups = figures.groups
    for group, index, area in found:
        if index is not None:
            groups.setdefault(group, {}).setdefault(FOUND, {})[index, area] = None
    return figures


async def _dropped(task: asyncio.Future[Any]) -> None:
    """Cancels ``task`` if it still runs and waits for it to end (its statement is
    cancelled in PostgreSQL too); what it raised is not the error reported."""
    if not task.done():
        task.cancel()
        await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # retrieved, so not logged as never retrieved


def _add_sums(groups: dict[Any, GroupFigures], names: tuple[str, ...],
              rows: Sequence[Any]) -> None:
    """A statement's sums of the figures ``names``, set in their group's figures by
    cell: each a Decimal of its text on PostgreSQL (_MoneySum), of a Decimal elsewhere.
    One row per cell (the statement groups by the cell's keys), except for a single
    figure read per record (_Source.per_cell): rows of one cell are added up."""
    if len(names) == 1:
        [name] = names
        values: dict[CellKey, Decimal | None] = {}
        last = _NO_GROUP
        for group, index, area, value in rows:
            if index is None:
                continue
            if group != last:  # the rows of a group come together, mostly
                figures = groups.get(group)
                if figures is None:
                    figures = groups[group] = {}
                values = figures.setdefault(name, {})
                last = group
            amount = _NONE if value is None else Decimal(value)
            # One look-up for the common case, a cell's first row.
            known = values.setdefault((index, area), amount)
            if known is not amount:  # a second row of the cell
                values[index, area] = known + amount
        return
    for group, index, area, *sums in rows:
        if index is None:
            continue
        figures = groups.setdefault(group, {})
        for name, value in zip(names, sums, strict=True):
            figures.setdefault(name, {})[index, area] = _NONE if value is None else \
                Decimal(value)


async def _rows(db: Any, statement: Select[Any] | Read, parameters: dict[str, Any]
                ) -> Sequence[Any]:
    # Each run planned for its values: a plan of one account and one of a thousand,
    # over a month or two years, want different plans (Database.custom_plan_engine).
    if isinstance(statement, Read):  # a cached statement: the driver sends it
        return await db.rows(statement, parameters, custom_plans=True, values=True)
    async with db.read(custom_plans=True) as connection:
        return (await connection.execute(statement, parameters)).all()


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
    shown_areas: tuple[int, ...]  # the offering areas every plan has rows for


class PlanFiguresByAccountLoader(Loader):
    """Account.plan for a page of accounts: one plan_figures for all of them (an
    aggregating statement per kind of record), not one per account. Keyed by account and
    the figures its plan reads: a batch reads those any of its plans asks for."""

    def __init__(self, loaders: Any, key: AccountPlanKey) -> None:
        super().__init__(loaders)
        self.key = key

    async def batch_load_fn(self, keys: list[tuple[int, frozenset[str]]]
                            ) -> list[GroupFigures]:
        key = self.key
        accounts = list(dict.fromkeys(account for account, _figures in keys))
        figures = await plan_figures(self.db, PlanQuery(
            accounts=tuple(accounts),
            first=key.first, last=key.last, currency=key.currency, timezone=key.timezone,
            group_by=PlanGroupBy.ACCOUNT, area_ids=key.area_ids, as_of=key.as_of,
            figures=frozenset().union(*(wanted for _account, wanted in keys)),
            shown_areas=key.shown_areas))
        return [figures.groups.get(account, {}) for account, _figures in keys]


class PlannedAccountLoader(Loader):
    """Whether the viewer may see each account's plan (planned_accounts), in one
    statement for all accounts asked about."""

    def __init__(self, loaders: Any) -> None:
        super().__init__(loaders)
        self.scope = planned_accounts(self.viewer)

    def load(self, key: int) -> Any:
        if self.scope is None:  # every account's: answered at once, no batch
            self.prime(key, True)
        return super().load(key)

    async def batch_load_fn(self, keys: list[int]) -> list[bool]:
        scope = self.scope
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
