"""Invoices and their lines: read policy, filters, ordering, loaders, and the billed
figures per period and offering area."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    cast,
    extract,
    false,
    func,
    select,
    type_coerce,
)
from sqlalchemy import true as true_

from loaders.base import ChildCountLoader, ChildPageLoader, Loader, RowByIdLoader
from loaders.query import FilterSpec, Related, Scalar, Sortable
from loaders.users import ACCOUNTS, team_accounts
from models.base import Money
from models.billing import Invoice, InvoiceLine, InvoiceStatus
from models.pricing import Product
from models.users import Role, Viewer

INVOICES = Invoice.__table__
INVOICE_LINES = InvoiceLine.__table__
PRODUCTS = Product.__table__

BILLED = (InvoiceStatus.SENT, InvoiceStatus.PAID)


def visible_invoices(viewer: Viewer) -> ColumnElement[bool]:
    """Admins and managers read every invoice; a rep those of its own and its team's
    accounts; partners none."""
    if viewer.role is Role.PARTNER:
        return false()
    if viewer.role is Role.REP:
        return INVOICES.c.account_id.in_(team_accounts(viewer))
    return true_()


def visible_invoice_lines(viewer: Viewer) -> ColumnElement[bool]:
    if viewer.role in (Role.ADMIN, Role.MANAGER):
        return true_()
    return INVOICE_LINES.c.invoice_id.in_(select(INVOICES.c.id).where(visible_invoices(viewer)))


def _account_filter() -> FilterSpec:
    from loaders.accounts import ACCOUNT_FILTER  # accounts' filter module imports ours

    return ACCOUNT_FILTER


INVOICE_FILTER = FilterSpec(
    fields={
        "id": Scalar(INVOICES.c.id, id_type="Invoice"),
        "number": Scalar(INVOICES.c.number),
        "external_id": Scalar(INVOICES.c.external_id),
        "account_id": Scalar(INVOICES.c.account_id, id_type="Account"),
        "status": Scalar(INVOICES.c.status),
        "currency": Scalar(INVOICES.c.currency),
        "invoice_date": Scalar(INVOICES.c.invoice_date),
        "due_date": Scalar(INVOICES.c.due_date),
        "total": Scalar(INVOICES.c.total),
        "created_at": Scalar(INVOICES.c.created_at),
        "account": Related(_account_filter, lambda: ACCOUNTS.c.id == INVOICES.c.account_id,
                           False),
    },
    visibility=visible_invoices,
)

INVOICE_ORDER = {
    "INVOICE_DATE": Sortable(INVOICES.c.invoice_date),
    "DUE_DATE": Sortable(INVOICES.c.due_date, nullable=True),
    "NUMBER": Sortable(INVOICES.c.number),
    "TOTAL": Sortable(INVOICES.c.total),
    "CREATED_AT": Sortable(INVOICES.c.created_at),
}


def invoices_statement(viewer: Viewer) -> Select[Any]:
    return select(INVOICES).where(visible_invoices(viewer))


class InvoiceByIdLoader(RowByIdLoader):
    table = INVOICES
    visibility = staticmethod(visible_invoices)


class InvoiceLineByIdLoader(RowByIdLoader):
    table = INVOICE_LINES
    visibility = staticmethod(visible_invoice_lines)


class InvoicesByAccountLoader(ChildPageLoader):
    parent_column = INVOICES.c.account_id
    filter_spec = INVOICE_FILTER
    orderable = INVOICE_ORDER
    default_order = ("INVOICE_DATE",)

    def base_statement(self) -> Select[Any]:
        return invoices_statement(self.viewer)


class InvoiceCountByAccountLoader(ChildCountLoader):
    parent_column = INVOICES.c.account_id
    filter_spec = INVOICE_FILTER

    def base_statement(self) -> Select[Any]:
        return invoices_statement(self.viewer)


class LinesByInvoiceLoader(Loader):
    """Each invoice's lines in order."""

    async def batch_load_fn(self, keys: list[int]) -> list[list[Any]]:
        statement = (select(INVOICE_LINES).where(INVOICE_LINES.c.invoice_id.in_(keys),
                                                 visible_invoice_lines(self.viewer))
                     .order_by(INVOICE_LINES.c.invoice_id, INVOICE_LINES.c.position,
                               INVOICE_LINES.c.id))
        grouped: dict[int, list[Any]] = {}
        async with self.db.read() as connection:
            for row in await connection.execute(statement):
                grouped.setdefault(row.invoice_id, []).append(row)
        return [grouped.get(key, []) for key in keys]


# --- billed figures -----------------------------------------------------------------------


class Granularity(Enum):
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    YEAR = "YEAR"


@dataclass(frozen=True)
class BilledFigure:
    account_id: int
    period: date  # the first day of the period
    offering_area_id: int | None  # None: lines without a product
    currency: str
    amount: Decimal
    invoice_count: int


def period_start(year: int, index: int, granularity: Granularity) -> date:
    if granularity is Granularity.MONTH:
        return date(year, index, 1)
    if granularity is Granularity.QUARTER:
        return date(year, index * 3 + 1, 1)
    return date(year, 1, 1)


def _period_index(column: Any, granularity: Granularity) -> Any:
    """The period within the year, in SQL on both databases: month 1-12, quarter 0-3,
    and None for a year (the year alone is the period)."""
    month = cast(extract("month", column), Integer)
    if granularity is Granularity.MONTH:
        return month
    if granularity is Granularity.QUARTER:
        return (month - 1) // 3
    return None


async def billed_figures(db: Any, account_ids: list[int] | None, *, start: date, end: date,
                         granularity: Granularity, visibility: ColumnElement[bool]
                         ) -> list[BilledFigure]:
    """Line totals of SENT and PAID invoices dated in [start, end], per account, period,
    offering area and currency: one aggregating statement."""
    year = cast(extract("year", INVOICES.c.invoice_date), Integer).label("year")
    index = _period_index(INVOICES.c.invoice_date, granularity)
    area = PRODUCTS.c.offering_area_id.label("area")
    keys = [INVOICES.c.account_id, year, *([index.label("idx")] if index is not None else []),
            area, INVOICES.c.currency]
    statement = (
        select(*keys,
               type_coerce(func.sum(INVOICE_LINES.c.line_total), Money()).label("amount"),
               func.count(func.distinct(INVOICES.c.id)).label("invoices"))
        .select_from(INVOICE_LINES.join(INVOICES, INVOICES.c.id == INVOICE_LINES.c.invoice_id)
                     .outerjoin(PRODUCTS, PRODUCTS.c.id == INVOICE_LINES.c.product_id))
        .where(INVOICES.c.status.in_(BILLED), INVOICES.c.invoice_date >= start,
               INVOICES.c.invoice_date <= end, visibility)
        .group_by(*keys)
    )
    if account_ids is not None:
        statement = statement.where(INVOICES.c.account_id.in_(account_ids))
    async with db.read() as connection:
        rows = (await connection.execute(statement)).all()
    figures = [BilledFigure(row.account_id,
                            period_start(int(row.year), int(row.idx) if index is not None
                                         else 1, granularity),
                            row.area, row.currency, row.amount or Decimal(0), int(row.invoices))
               for row in rows]
    figures.sort(key=lambda f: (f.account_id, f.period, f.currency,
                                f.offering_area_id is None, f.offering_area_id or 0))
    return figures


class BillingByAccountLoader(Loader):
    """Account.billing for every account of the request in one statement."""

    def __init__(self, loaders: Any, start: date, end: date, granularity: Granularity) -> None:
        super().__init__(loaders)
        self.start, self.end, self.granularity = start, end, granularity

    async def batch_load_fn(self, keys: list[int]) -> list[list[BilledFigure]]:
        figures = await billed_figures(self.db, keys, start=self.start, end=self.end,
                                       granularity=self.granularity,
                                       visibility=visible_invoices(self.viewer))
        grouped: dict[int, list[BilledFigure]] = {}
        for figure in figures:
            grouped.setdefault(figure.account_id, []).append(figure)
        return [grouped.get(key, []) for key in keys]
