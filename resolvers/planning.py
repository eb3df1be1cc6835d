"""Account plans: budget, forecast, billed, won and pipeline side by side per period and
offering area, for one account or rolled up; and the budget and forecast mutations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loaders.accounts import ACCOUNT_FILTER, AccountByIdLoader
from loaders.billing import Granularity
from loaders.container import Loaders
from loaders.errors import BadUserInput, Forbidden
from loaders.planning import (
    ACTIVE_AREAS,
    ALL_FIGURES,
    FORECASTS,
    AccountPlanKey,
    CellKey,
    GroupFigures,
    PlanAreasLoader,
    PlanFiguresByAccountLoader,
    PlanGroupBy,
    PlannedAccountLoader,
    PlanQuery,
    cell_keys,
    month_start,
    months_between,
    next_month,
    plan_figures,
    planned_accounts,
)
from loaders.pricing import OFFERING_AREAS
from loaders.query import compile_filter
from loaders.users import ACCOUNTS
from models.base import utcnow
from models.db import Database
from models.planning import Budget, Forecast, ForecastKind
from models.pricing import OfferingArea
from models.users import Role, Viewer
from resolvers.errors import UserErrorCode
from resolvers.mutations import (
    Checks,
    Outcome,
    currency_argument,
    forbidden,
    mutate,
    not_found,
    require_version,
)
from resolvers.policy import can_write, load_owner

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000000")
MAX_MONTHS = 120
MAX_CELLS = 5000

# A concurrent writer got past our checks first and a unique key stopped us.
ON_DUPLICATE = "someone else changed the same plan at the same time; reload and retry"


# --- reading plans ------------------------------------------------------------------------


ZERO = Decimal("0.00")
# The columns of a plan line. A plan computes those its reader asks for (and what they
# are made of); the others stay as they are without records.
COLUMNS = ("budget", "fixed_forecast", "rolling_forecast", "forecast", "forecast_kind",
           "billed", "won", "open_pipeline", "weighted_pipeline", "budget_variance",
           "billed_to_budget")
ALL_COLUMNS = frozenset(COLUMNS)
_MADE_OF = {"forecast_kind": ("forecast",), "budget_variance": ("budget", "forecast"),
            "billed_to_budget": ("billed", "budget")}


def _computed(columns: Iterable[str]) -> frozenset[str]:
    """The columns asked for and those they are made of."""
    return frozenset(name for column in columns if column in ALL_COLUMNS
                     for name in (column, *_MADE_OF.get(column, ())))


def _figures(columns: frozenset[str], kind: ForecastKind | None) -> frozenset[str]:
    """The figures (loaders.planning.FIGURES) the columns are computed from."""
    figures = set(columns & ALL_FIGURES)
    if "forecast" in columns:
        figures.update(("fixed_forecast",) if kind is ForecastKind.FIXED else
                       ("rolling_forecast",) if kind is ForecastKind.ROLLING else
                       ("fixed_forecast", "rolling_forecast"))
    return frozenset(figures)


# A line of a plan: its "period", "group" and "area_id" (and "group_by" in roll-ups), and
# the columns computed, by name. A dict, made in one go: a plan of a page of accounts has
# thousands of lines, and the schema's rows keep them as they are (schema/planning.py).
PlanLine = dict[str, Any]


def _add(total: Decimal | None, value: Decimal | None) -> Decimal | None:
    if value is None:
        return total
    return value if total is None else total + value


def _set_sum(values: Iterable[Decimal | None]) -> Decimal | None:
    """The sum of the values that are set; None where none is."""
    total = None
    for value in values:
        if value is not None:
            total = value if total is None else total + value
    return total


# How a column is made for every line of a plan of one group, from its figures in the
# cells of each line's months (a sequence of cell keys per line): each sets its column
# (forecast also forecast_kind), the derived ones from the columns before them. A call
# per column, not per line and column: a plan of a page of accounts has thousands of
# lines.
Maker = Callable[[list[PlanLine], GroupFigures, Sequence[Sequence[CellKey]]], None]
_NO_VALUES: dict[CellKey, Decimal | None] = {}
_NOTHING = Decimal(0)  # a figure that is zero without records, where it has none


def _set_cents(name: str) -> Maker:
    """A figure that may be unset: the sum of the months that have it, in cents."""

    def make(lines: list[PlanLine], figures: GroupFigures,
             keys: Sequence[Sequence[CellKey]]) -> None:
        found = figures.get(name, _NO_VALUES).get
        for line, cells in zip(lines, keys, strict=True):
            if len(cells) == 1:  # a period of one month: no sum
                value = found(cells[0])
                line[name] = None if value is None else value.quantize(CENT)
                continue
            total = None
            for cell in cells:
                value = found(cell)
                if value is not None:
                    total = value if total is None else total + value
            line[name] = None if total is None else total.quantize(CENT)

    return make


def _cents(name: str) -> Maker:
    """A figure every month has (zero where nothing was billed, won or open): its sum in
    cents. Apart from _set_cents, as a loop per line without a test per value."""

    def make(lines: list[PlanLine], figures: GroupFigures,
             keys: Sequence[Sequence[CellKey]]) -> None:
        found = figures.get(name, _NO_VALUES).get
        for line, cells in zip(lines, keys, strict=True):
            total = ZERO
            for cell in cells:
                total += found(cell, _NOTHING)
            line[name] = total.quantize(CENT)

    return make


def _weighted(lines: list[PlanLine], figures: GroupFigures,
              keys: Sequence[Sequence[CellKey]]) -> None:
    # In cents already: rounded per account, month and area in SQL.
    found = figures.get("weighted_pipeline", _NO_VALUES).get
    for line, cells in zip(lines, keys, strict=True):
        total = ZERO
        for cell in cells:
            total += found(cell, _NOTHING)
        line["weighted_pipeline"] = total


def _forecast_of(kind: ForecastKind | None) -> Maker:
    def make(lines: list[PlanLine], figures: GroupFigures,
             keys: Sequence[Sequence[CellKey]]) -> None:
        fixed = figures.get("fixed_forecast", _NO_VALUES).get
        rolling = figures.get("rolling_forecast", _NO_VALUES).get
        for line, cells in zip(lines, keys, strict=True):
            total, kinds = None, set()
            for cell in cells:
                chosen, chosen_kind = _forecast(fixed(cell), rolling(cell), kind)
                if chosen is not None:
                    total = _add(total, chosen)
                    kinds.add(chosen_kind)
            line["forecast"] = None if total is None else total.quantize(CENT)
            line["forecast_kind"] = kinds.pop() if len(kinds) == 1 else None

    return make


def _budget_variance(lines: list[PlanLine], _figures: GroupFigures,
                     _keys: Sequence[Sequence[CellKey]]) -> None:
    for line in lines:
        budget, forecast = line["budget"], line["forecast"]
        line["budget_variance"] = (
            None if budget is None or forecast is None else forecast - budget)


def _billed_to_budget(lines: list[PlanLine], _figures: GroupFigures,
                      _keys: Sequence[Sequence[CellKey]]) -> None:
    for line in lines:
        budget = line["budget"]
        line["billed_to_budget"] = (
            round(float(line["billed"] / budget), 4) if budget else None)


def _made(lines: list[PlanLine], figures: GroupFigures, keys: Sequence[Sequence[CellKey]],
          columns: frozenset[str], kind: ForecastKind | None) -> list[PlanLine]:
    """The lines of one group with their ``columns`` (_computed) made of its figures in
    the cells of their months (``keys``): the months' figures summed, then rounded to
    cents."""
    for column, make in _makers(kind):  # the derived columns last
        if column in columns:
            make(lines, figures, keys)
    return lines


@cache
def _makers(kind: ForecastKind | None) -> tuple[tuple[str, Maker], ...]:
    """Each column with its maker, in the order they are made: made once per kind of
    forecast, not for each of a page of accounts' plans."""
    return (("budget", _set_cents("budget")), ("fixed_forecast", _set_cents("fixed_forecast")),
            ("rolling_forecast", _set_cents("rolling_forecast")),
            ("forecast", _forecast_of(kind)), ("billed", _cents("billed")),
            ("won", _cents("won")), ("open_pipeline", _cents("open_pipeline")),
            ("weighted_pipeline", _weighted), ("budget_variance", _budget_variance),
            ("billed_to_budget", _billed_to_budget))


def _period_of(month: date, granularity: Granularity) -> date:
    if granularity is Granularity.MONTH:
        return month
    if granularity is Granularity.QUARTER:
        return date(month.year, (month.month - 1) // 3 * 3 + 1, 1)
    return date(month.year, 1, 1)


@lru_cache(maxsize=1024)
def _layout(first: date, last: date, granularity: Granularity
            ) -> tuple[tuple[date, tuple[int, ...]], ...]:
    """The periods of a plan, each with the indexes of its months: the same for every
    plan of a page of accounts."""
    periods: dict[date, list[int]] = {}
    for index, month in enumerate(months_between(first, last)):
        periods.setdefault(_period_of(month, granularity), []).append(index)
    return tuple((period, tuple(indexes)) for period, indexes in periods.items())


def _forecast(fixed: Decimal | None, rolling: Decimal | None, kind: ForecastKind | None
              ) -> tuple[Decimal | None, ForecastKind]:
    """The forecast a month shows: of the kind asked, else the current rolling version
    where there is one, else the fixed figure."""
    if kind is ForecastKind.FIXED or (kind is None and rolling is None):
        return fixed, ForecastKind.FIXED
    return rolling, ForecastKind.ROLLING


def _periods(first: date, last: date) -> None:
    if last < first:
        raise BadUserInput("`to` comes before `from`")
    if (last.year - first.year) * 12 + last.month - first.month >= MAX_MONTHS:
        raise BadUserInput(f"a plan covers at most {MAX_MONTHS} months")


def _refuse_partner(viewer: Viewer) -> None:
    if viewer.role is Role.PARTNER:
        raise Forbidden("partners have no access to plans")


async def _plan_account(loaders: Loaders, account_id: int) -> Any:
    viewer = loaders.viewer
    _refuse_partner(viewer)
    account = await loaders.get(AccountByIdLoader).load(account_id)
    if account is None:
        raise BadUserInput("accountId: no such account")
    if not await loaders.get(PlannedAccountLoader).load(account_id):
        raise Forbidden("reps see the plans of their own and their team's accounts")
    return account


@dataclass
class Plan:
    rows: list[PlanLine]
    totals: PlanLine


def _as_of_cutoff(as_of: date | None, timezone: str) -> datetime | None:
    if as_of is None:
        return None
    end = datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=ZoneInfo(timezone))
    return end.astimezone(UTC) - timedelta(microseconds=1)


async def account_plan(*, loaders: Loaders, account_id: int, first: date, last: date,
                       granularity: Granularity, area_ids: list[int] | None, currency: str,
                       forecast_kind: ForecastKind | None, as_of: date | None,
                       timezone: str, columns: Iterable[str] = ALL_COLUMNS,
                       totals: Iterable[str] | None = None) -> Plan:
    """``columns``: the PlanLine columns the caller reads; only they are computed.
    ``totals``: those of them it reads in the totals (None: all of them); the others
    keep their defaults there (a page of accounts' plans often shows no totals)."""
    _periods(first, last)
    currency = currency_argument(currency)
    await _plan_account(loaders, account_id)
    computed = _computed(columns)
    asked = tuple(sorted(set(area_ids))) if area_ids is not None else None
    # The areas and the figures are read at once, once the account's checks pass (on a
    # page of an admin's or a manager's accounts they pass without a wait): the
    # figures' statements know the shown areas without the areas' read (every active
    # one, or those asked for: a plan asking for one that does not exist is refused).
    # Not before the checks: a plan refused would leave its reads running on after the
    # request.
    areas = _load_areas(loaders, asked)
    # Batched: Account.plan on a page of accounts reads all their figures at once.
    figures = loaders.get(PlanFiguresByAccountLoader, AccountPlanKey(
        first=first, last=last, currency=currency, timezone=timezone, area_ids=asked,
        as_of=_as_of_cutoff(as_of, timezone),
        shown_areas=ACTIVE_AREAS if asked is None else asked,
    )).load((account_id, _figures(computed, forecast_kind)))
    try:
        # The figures first: read beside the areas, they are awaited once (a hundred
        # plans woken by the areas would hold up the figures' second statement).
        found = await figures
        shown = _checked_areas(await areas, area_ids)
    except BaseException:
        areas.add_done_callback(_retrieved)
        figures.add_done_callback(_retrieved)
        raise
    rows = _account_lines(found, account_id, first, last, granularity, shown,
                          all_areas=area_ids is None, columns=computed,
                          forecast_kind=forecast_kind)
    return Plan(rows, _total(rows, computed if totals is None else _computed(totals)))


def _account_lines(figures: GroupFigures, account_id: int, first: date, last: date,
                   granularity: Granularity, shown: list[int], *, all_areas: bool,
                   columns: frozenset[str], forecast_kind: ForecastKind | None
                   ) -> list[PlanLine]:
    """An account's plan lines, a line per period and offering area shown, with the
    ``columns`` (_computed) made of its figures."""
    areas = tuple(shown)
    if all_areas:
        # Figures in an inactive area or in none (free-text invoice lines, deals without
        # an area) get their rows too, after the active areas.
        seen = set()
        for values in figures.values():
            seen.update(map(_AREA, values))
        if not seen.issubset(shown):
            areas += (*sorted(a for a in seen.difference(shown) if a is not None),
                      *((None,) if None in seen else ()))
    layout = _lines_layout(first, last, granularity, areas)
    lines = [{"period": period, "group": account_id, "area_id": area}
             for period, area in layout.lines]
    return _made(lines, figures, layout.keys, columns, forecast_kind)


_AREA = itemgetter(1)  # of a cell's key: (month index, offering area)


@dataclass(frozen=True)
class _Layout:
    lines: tuple[tuple[date, int | None], ...]  # each line's period and offering area
    keys: tuple[tuple[CellKey, ...], ...]  # the keys of each line's cells


@lru_cache(maxsize=1024)
def _lines_layout(first: date, last: date, granularity: Granularity,
                  areas: tuple[int | None, ...]) -> _Layout:
    """The lines of a plan (a period and an offering area), with the keys of their
    cells: the same for every plan of a page of accounts."""
    lines = [(period, area, indexes) for period, indexes in _layout(first, last, granularity)
             for area in areas]
    return _Layout(tuple((period, area) for period, area, _indexes in lines),
                   tuple(tuple((index, area) for index in indexes)
                         for _period, area, indexes in lines))


def _total(rows: list[PlanLine], columns: frozenset[str] = ALL_COLUMNS) -> PlanLine:
    """The columns of the totals (PlanTotals: no forecast_kind) over the rows."""
    total: PlanLine = {}
    for name in ("budget", "fixed_forecast", "rolling_forecast", "forecast"):
        if name in columns:
            total[name] = _set_sum([row[name] for row in rows])
    for name in ("billed", "won", "open_pipeline", "weighted_pipeline"):
        if name in columns:
            total[name] = sum([row[name] for row in rows], ZERO)
    derived = frozenset(("budget_variance", "billed_to_budget")) & columns
    return _made([total], {}, [()], derived, None)[0]


def _load_areas(loaders: Loaders, asked: tuple[int, ...] | None) -> asyncio.Future[list[int]]:
    """The offering areas a plan shows: those asked for (distinct and sorted), else
    every active one; by code (_checked_areas checks that those asked for exist)."""
    return loaders.get(PlanAreasLoader).load(  # type: ignore[no-any-return]
        ACTIVE_AREAS if asked is None else asked)


def _checked_areas(found: list[int], area_ids: list[int] | None) -> list[int]:
    if area_ids is not None and len(found) != len(set(area_ids)):
        raise BadUserInput("offeringAreaIds: an offering area does not exist")
    return found


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Marks what a future raised as seen: a read whose answer is no longer wanted."""
    if not future.cancelled():
        future.exception()


async def plan_summary(*, loaders: Loaders, group_by: PlanGroupBy, filter: Any, first: date,
                       last: date, granularity: Granularity, currency: str,
                       as_of: date | None, forecast_kind: ForecastKind | None,
                       timezone: str, columns: Iterable[str] = ALL_COLUMNS) -> Plan:
    """The plan columns per group (account, owner, team or offering area) and period, over
    the accounts the filter picks among those the viewer may see. ``columns``: the
    PlanLine columns the caller reads; only they are computed."""
    viewer = loaders.viewer
    _refuse_partner(viewer)
    _periods(first, last)
    currency = currency_argument(currency)
    accounts = select(ACCOUNTS.c.id).where(compile_filter(ACCOUNT_FILTER, filter, viewer))
    scope = planned_accounts(viewer)
    if scope is not None:
        accounts = accounts.where(ACCOUNTS.c.id.in_(scope))
    computed = _computed(columns)
    figures = await plan_figures(loaders.db, PlanQuery(
        accounts=accounts, first=first, last=last, currency=currency, timezone=timezone,
        group_by=group_by, as_of=_as_of_cutoff(as_of, timezone),
        figures=_figures(computed, forecast_kind)))
    periods = [_period_of(month, granularity) for month in figures.months]
    rows: list[PlanLine] = []
    # A None group is a row too: accounts whose owner has no team, or figures without an
    # offering area; every roll-up of the same accounts has the same totals.
    for group, found in figures.groups.items():
        by_period: dict[date, list[CellKey]] = {}
        for key in cell_keys(found):
            by_period.setdefault(periods[key[0]], []).append(key)
        area = group if group_by is PlanGroupBy.OFFERING_AREA else None
        rows += _made([{"period": period, "group": group, "group_by": group_by,
                        "area_id": area} for period in by_period], found,
                      list(by_period.values()), computed, forecast_kind)
    rows.sort(key=lambda row: (row["group"] is None, row["group"] or 0, row["period"]))
    return Plan(rows, _total(rows, computed))


@dataclass(frozen=True)
class ForecastVersion:
    row: Any  # forecasts row
    current: bool


async def forecast_history(*, loaders: Loaders, account_id: int, area_id: int, period: date
                           ) -> list[ForecastVersion]:
    """Every rolling version of one month's forecast, oldest first; the last is current."""
    await _plan_account(loaders, account_id)
    statement = (select(FORECASTS).where(
        FORECASTS.c.account_id == account_id, FORECASTS.c.offering_area_id == area_id,
        FORECASTS.c.period == month_start(period), FORECASTS.c.kind == ForecastKind.ROLLING)
        .order_by(FORECASTS.c.submitted_at, FORECASTS.c.id))
    async with loaders.db.read() as connection:
        rows = (await connection.execute(statement)).all()
    return [ForecastVersion(row, index == len(rows) - 1) for index, row in enumerate(rows)]


# --- budgets and forecasts ----------------------------------------------------------------


@dataclass(frozen=True)
class BudgetCell:
    account_id: str
    offering_area_id: str
    month: date
    amount: Decimal


def _amount(checks: Checks, field_name: str, value: Decimal | None) -> Decimal | None:
    if value is None or not value.is_finite() or value < 0 or value >= MAX_AMOUNT:
        checks.fail(field_name, f"the amount is between 0 and {MAX_AMOUNT}")
        return None
    if value != value.quantize(CENT):
        checks.fail(field_name, "the amount has at most two decimals")
        return None
    return value.quantize(CENT)


def _month(checks: Checks, field_name: str, value: date) -> date | None:
    if value.day != 1:
        checks.fail(field_name, f"a plan month is given by its first day, e.g. "
                    f"{month_start(value).isoformat()}")
        return None
    return value


async def _writable_accounts(session: AsyncSession, viewer: Viewer, checks: Checks,
                             keys: dict[str, int]) -> None:
    """Check each account (by field name) exists and its plans are the viewer's to edit:
    the owner, the owner's manager, an admin."""
    rows = {row.id: row for row in await session.execute(
        select(ACCOUNTS.c.id, ACCOUNTS.c.owner_id).where(ACCOUNTS.c.id.in_(set(keys.values()))))}
    owners: dict[int, Any] = {}
    for field_name, key in keys.items():
        account = rows.get(key)
        if account is None:
            checks.fail(field_name, "account not found", UserErrorCode.NOT_FOUND)
            continue
        if account.owner_id not in owners:
            owners[account.owner_id] = await load_owner(session, account.owner_id)
        owner = owners[account.owner_id]
        if owner is None or not can_write(viewer, owner):
            checks.fail(field_name, "you cannot edit this account's plans",
                        UserErrorCode.FORBIDDEN)


async def _known_areas(session: AsyncSession, checks: Checks, keys: dict[str, int]) -> None:
    found = {row.id for row in await session.execute(
        select(OFFERING_AREAS.c.id).where(OFFERING_AREAS.c.id.in_(set(keys.values()))))}
    for field_name, key in keys.items():
        if key not in found:
            checks.fail(field_name, "offering area not found", UserErrorCode.NOT_FOUND)


async def set_budgets(*, viewer: Viewer, db: Database, currency: str, cells: list[BudgetCell]
                      ) -> Outcome[list[Budget]]:
    """Create or replace a grid of budgets (accounts x offering areas x months) in one
    transaction: all of them or, on any error, none."""
    async def action() -> list[Budget]:
        if viewer.role is Role.PARTNER:
            raise forbidden("partners have no plans")
        checks = Checks()
        currency_ = checks.currency("currency", currency)
        if len(cells) > MAX_CELLS:
            checks.fail("cells", f"at most {MAX_CELLS} cells per call")
            checks.raise_if_any()
        async with db.transaction() as session:
            accounts: dict[str, int] = {}
            areas: dict[str, int] = {}
            wanted: dict[tuple[int, int, date], Decimal] = {}
            for index, cell in enumerate(cells):
                prefix = f"cells.{index}."
                account = checks.global_id(f"{prefix}accountId", cell.account_id, "Account")
                area = checks.global_id(f"{prefix}offeringAreaId", cell.offering_area_id,
                                        "OfferingArea")
                month = _month(checks, f"{prefix}month", cell.month)
                amount = _amount(checks, f"{prefix}amount", cell.amount)
                if account is not None:
                    accounts[f"{prefix}accountId"] = account
                if area is not None:
                    areas[f"{prefix}offeringAreaId"] = area
                if None in (account, area, month, amount):
                    continue
                key = (account, area, month)
                if key in wanted:
                    checks.fail(f"cells.{index}", "the same account, offering area and month "
                                "is given twice")
                wanted[key] = amount  # type: ignore[assignment]
            await _writable_accounts(session, viewer, checks, accounts)
            await _known_areas(session, checks, areas)
            checks.raise_if_any()
            existing = {(b.account_id, b.offering_area_id, b.period): b for b in (
                await session.execute(select(Budget).where(
                    Budget.account_id.in_({k[0] for k in wanted}),
                    Budget.period.in_({k[2] for k in wanted})))).scalars()}
            # New cells are inserted in the order they are added: in one order (their
            # keys) for every writer, so two writers of one grid never wait for each
            # other's cells crosswise (a deadlock); the later one waits, then meets the
            # earlier's cells as a CONFLICT. Changed cells are updated in their ids' order.
            written: dict[tuple[int, int, date], Budget] = {}
            for key in sorted(wanted):
                budget = existing.get(key)
                if budget is None:
                    account, area, month = key
                    budget = Budget(account_id=account, offering_area_id=area, period=month,
                                    amount=wanted[key], currency=currency_)
                    session.add(budget)
                else:
                    budget.amount, budget.currency = wanted[key], currency_  # type: ignore[assignment]
                written[key] = budget
            await session.flush()
        return [written[key] for key in wanted]  # in the order they were given

    return await mutate(action, on_duplicate=ON_DUPLICATE)


async def delete_budget(*, viewer: Viewer, db: Database, budget_id: str,
                        expected_version: int) -> Outcome[int]:
    async def action() -> int:
        if viewer.role is Role.PARTNER:
            raise forbidden("partners have no plans")
        async with db.transaction() as session:
            checks = Checks()
            key = checks.global_id("id", budget_id, "Budget")
            checks.raise_if_any()
            budget = await session.get(Budget, key)
            if budget is None:
                raise not_found("id", "budget")
            await _writable_accounts(session, viewer, checks, {"id": budget.account_id})
            if checks.errors:
                raise forbidden("you cannot edit this account's plans")
            require_version(budget.version, expected_version)
            await session.delete(budget)
        return key  # type: ignore[return-value]

    return await mutate(action)


async def submit_forecast(*, viewer: Viewer, db: Database, timezone: str, account_id: str,
                          offering_area_id: str, kind: ForecastKind, from_month: date,
                          amounts: list[Decimal], currency: str) -> Outcome[list[Forecast]]:
    """FIXED: one figure per month, set or changed until the month begins (a month that
    has begun may still get its first figure, never a changed one). ROLLING: a new
    version for each month from ``from_month`` on, current from now on."""
    async def action() -> list[Forecast]:
        if viewer.role is Role.PARTNER:
            raise forbidden("partners have no plans")
        checks = Checks()
        currency_ = checks.currency("currency", currency)
        start = _month(checks, "fromMonth", from_month)
        if not amounts or len(amounts) > 36:
            checks.fail("amounts", "give one amount per month, 1 to 36 of them")
        values = [_amount(checks, f"amounts.{n}", amount) for n, amount in enumerate(amounts)]
        async with db.transaction() as session:
            account = checks.global_id("accountId", account_id, "Account")
            area = checks.global_id("offeringAreaId", offering_area_id, "OfferingArea")
            if account is not None:
                await _writable_accounts(session, viewer, checks, {"accountId": account})
            if area is not None and await session.get(OfferingArea, area) is None:
                checks.fail("offeringAreaId", "offering area not found",
                            UserErrorCode.NOT_FOUND)
            checks.raise_if_any()
            assert start is not None
            months = [start]
            while len(months) < len(amounts):
                months.append(next_month(months[-1]))
            now = utcnow()
            this_month = month_start(now.astimezone(ZoneInfo(timezone)).date())
            written: list[Forecast] = []
            fixed: dict[date, Forecast] = {}
            if kind is ForecastKind.FIXED:
                fixed = {f.period: f for f in (await session.execute(select(Forecast).where(
                    Forecast.account_id == account, Forecast.offering_area_id == area,
                    Forecast.kind == ForecastKind.FIXED,
                    Forecast.period.in_(months)))).scalars()}
            for n, (month, amount) in enumerate(zip(months, values, strict=True)):
                current = fixed.get(month)
                if current is not None:
                    if month <= this_month:
                        checks.fail(f"amounts.{n}", f"the FIXED forecast of {month:%Y-%m} is "
                                    "locked: the month has begun")
                        continue
                    current.amount, current.currency = amount, currency_  # type: ignore[assignment]
                    current.submitted_by_id, current.submitted_at = viewer.user_id, now
                    written.append(current)
                    continue
                record = Forecast(account_id=account, offering_area_id=area, period=month,
                                  amount=amount, currency=currency_, kind=kind,
                                  submitted_by_id=viewer.user_id, submitted_at=now)
                session.add(record)
                written.append(record)
            checks.raise_if_any()
            await session.flush()
        return written

    return await mutate(action, on_duplicate=ON_DUPLICATE)
