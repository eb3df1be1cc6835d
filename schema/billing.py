"""Invoices and their lines, billed figures, and the invoice mutations and ERP import."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import strawberry
from strawberry import UNSET, Private

from loaders.accounts import AccountByIdLoader
from loaders.billing import (
    BilledFigure,
    BillingByAccountLoader,
    InvoiceByIdLoader,
    InvoiceCountByAccountLoader,
    InvoicesByAccountLoader,
    LinesByInvoiceLoader,
)
from loaders.billing import Granularity as GranularityEnum
from loaders.ids import encode_id
from loaders.pricing import OfferingAreaByIdLoader, PriceBookByIdLoader, ProductByIdLoader
from loaders.query import PageArgs
from models.billing import InvoiceStatus as InvoiceStatusEnum
from resolvers import billing as resolve
from resolvers.billing import ImportInvoice, LineInput
from schema import accounts as account_types  # accounts refer back to billing
from schema.context import Info, viewer_of
from schema.errors import UserError, payload, user_errors
from schema.filters import (
    DateFilter,
    DateTimeFilter,
    DecimalFilter,
    IDFilter,
    OrderDirection,
    StringFilter,
    enum_filter,
)
from schema.inputs import sent_changes
from schema.pricing import OfferingArea, PriceBook, PriceSource, Product
from schema.relay import Connection, Node, connection

if TYPE_CHECKING:
    from schema.accounts import Account, AccountFilter

InvoiceStatus = strawberry.enum(
    InvoiceStatusEnum, name="InvoiceStatus",
    description="DRAFT invoices change; SENT and PAID ones never do; CANCELLED ones count "
    "for nothing.")
InvoiceStatusFilter = enum_filter(InvoiceStatus, "InvoiceStatusFilter")


@strawberry.type(description="An invoice to an account, in one currency.")
class Invoice(Node):
    id: strawberry.ID
    version: int = strawberry.field(description="Pass as expectedVersion when changing it or "
                                    "its lines.")
    number: str
    invoice_date: date
    due_date: date | None
    status: InvoiceStatus  # type: ignore[valid-type]
    currency: str
    external_id: str | None = strawberry.field(description="Its id in the ERP it came from.")
    notes: str | None
    total: Decimal = strawberry.field(description="The sum of the line totals.")
    created_at: datetime
    updated_at: datetime
    _key: Private[int]
    _account_id: Private[int]

    @classmethod
    def from_row(cls, row: Any) -> Invoice:
        return cls(id=encode_id("Invoice", row.id), version=row.version, number=row.number,
                   invoice_date=row.invoice_date, due_date=row.due_date, status=row.status,
                   currency=row.currency, external_id=row.external_id, notes=row.notes,
                   total=row.total, created_at=row.created_at, updated_at=row.updated_at,
                   _key=row.id, _account_id=row.account_id)

    @strawberry.field
    async def account(self, info: Info
                      ) -> Annotated[Account, strawberry.lazy("schema.accounts")] | None:
        row = await info.context.loaders.get(AccountByIdLoader).load(self._account_id)
        return account_types.Account.from_row(row) if row else None

    @strawberry.field(description="The lines in order.")
    async def lines(self, info: Info) -> list[InvoiceLine]:
        rows = await info.context.loaders.get(LinesByInvoiceLoader).load(self._key)
        return [InvoiceLine.from_row(row) for row in rows]


@strawberry.type(description="One line of an invoice.")
class InvoiceLine(Node):
    id: strawberry.ID
    position: int
    description: str | None
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    price_source: PriceSource  # type: ignore[valid-type]
    line_total: Decimal = strawberry.field(
        description="quantity x unitPrice less the discount, rounded half-even to cents.")
    _invoice_id: Private[int]
    _product_id: Private[int | None]
    _book_id: Private[int | None]

    @classmethod
    def from_row(cls, row: Any) -> InvoiceLine:
        return cls(id=encode_id("InvoiceLine", row.id), position=row.position,
                   description=row.description, quantity=row.quantity,
                   unit_price=row.unit_price, discount_percent=row.discount_percent,
                   price_source=row.price_source, line_total=row.line_total,
                   _invoice_id=row.invoice_id, _product_id=row.product_id,
                   _book_id=row.price_book_id)

    @strawberry.field
    async def invoice(self, info: Info) -> Invoice | None:
        row = await info.context.loaders.get(InvoiceByIdLoader).load(self._invoice_id)
        return Invoice.from_row(row) if row else None

    @strawberry.field(description="Null for a free-text line.")
    async def product(self, info: Info) -> Product | None:
        if self._product_id is None:
            return None
        row = await info.context.loaders.get(ProductByIdLoader).load(self._product_id)
        return Product.from_row(row) if row else None

    @strawberry.field(description="The book an automatic price came from.")
    async def price_book(self, info: Info) -> PriceBook | None:
        if self._book_id is None:
            return None
        row = await info.context.loaders.get(PriceBookByIdLoader).load(self._book_id)
        return PriceBook.from_row(row) if row else None


@strawberry.type(description="What SENT and PAID invoices billed in one period, offering "
                 "area and currency.")
class BillingFigure:
    period: date = strawberry.field(description="The first day of the period.")
    currency: str
    amount: Decimal
    invoice_count: int
    _area_id: Private[int | None]

    @classmethod
    def from_figure(cls, figure: BilledFigure) -> BillingFigure:
        return cls(period=figure.period, currency=figure.currency, amount=figure.amount,
                   invoice_count=figure.invoice_count, _area_id=figure.offering_area_id)

    @strawberry.field(description="Null for lines without a product.")
    async def offering_area(self, info: Info) -> OfferingArea | None:
        if self._area_id is None:
            return None
        row = await info.context.loaders.get(OfferingAreaByIdLoader).load(self._area_id)
        return OfferingArea.from_row(row) if row else None


# --- filters and ordering -----------------------------------------------------------------


@strawberry.input(description="Conditions on invoices; combine with and, or, not.")
class InvoiceFilter:
    id: IDFilter | None = UNSET
    number: StringFilter | None = UNSET
    external_id: StringFilter | None = UNSET
    account_id: IDFilter | None = UNSET
    status: InvoiceStatusFilter | None = UNSET  # type: ignore[valid-type]
    currency: StringFilter | None = UNSET
    invoice_date: DateFilter | None = UNSET
    due_date: DateFilter | None = UNSET
    total: DecimalFilter | None = UNSET
    created_at: DateTimeFilter | None = UNSET
    account: Annotated[AccountFilter, strawberry.lazy("schema.accounts")] | None = UNSET
    and_: list[InvoiceFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[InvoiceFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: InvoiceFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.enum(description="What invoices can be ordered by.")
class InvoiceOrderField(Enum):
    INVOICE_DATE = "INVOICE_DATE"
    DUE_DATE = "DUE_DATE"
    NUMBER = "NUMBER"
    TOTAL = "TOTAL"
    CREATED_AT = "CREATED_AT"
    ID = "ID"


@strawberry.input
class InvoiceOrder:
    field: InvoiceOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.type
class BillingQueries:
    @strawberry.field(description="Invoices the viewer may see (a rep: of its own and its "
                      "team's accounts; partners none), filtered and ordered.")
    async def invoices(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: InvoiceFilter | None = None, order_by: list[InvoiceOrder] | None = None,
    ) -> Connection[Invoice]:
        viewer_of(info)
        listing = await resolve.list_invoices(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by)
        return connection(listing.page, Invoice.from_row, listing.total_count)


# --- mutations ----------------------------------------------------------------------------


@strawberry.input(description="A line: without unitPrice it is priced by price resolution "
                  "(and repriced with the draft); with one it is MANUAL.")
class InvoiceLineInput:
    product_id: strawberry.ID | None = strawberry.field(
        default=None, description="Leave out for a free-text line (then give unitPrice and "
        "description).")
    description: str | None = None
    quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = None
    discount_percent: Decimal | None = strawberry.field(default=None,
                                                        description="0 to 100.")


@strawberry.input
class CreateInvoiceInput:
    account_id: strawberry.ID
    currency: str = "EUR"
    invoice_date: date | None = strawberry.field(default=None,
                                                 description="Defaults to today.")
    due_date: date | None = strawberry.field(default=None,
                                             description="Defaults to 30 days after.")
    number: str | None = strawberry.field(default=None,
                                          description="Defaults to INV-<6 digits>.")
    notes: str | None = None
    lines: list[InvoiceLineInput] = strawberry.field(default_factory=list)


@strawberry.input
class AddInvoiceLinesInput:
    id: strawberry.ID
    expected_version: int
    lines: list[InvoiceLineInput]


@strawberry.input(description="Only the fields sent are changed; expectedVersion is the "
                  "invoice's. A null unitPrice hands the line back to price resolution.")
class UpdateInvoiceLineInput:
    id: strawberry.ID
    expected_version: int
    product_id: strawberry.ID | None = UNSET
    description: str | None = UNSET
    quantity: Decimal | None = UNSET
    unit_price: Decimal | None = UNSET
    discount_percent: Decimal | None = UNSET


@strawberry.input(description="expectedVersion is the invoice's.")
class RemoveInvoiceLineInput:
    id: strawberry.ID
    expected_version: int


@strawberry.input
class InvoiceVersionInput:
    id: strawberry.ID
    expected_version: int


@strawberry.input(description="An imported line: the product by id or by code.")
class ImportInvoiceLineInput:
    product_id: strawberry.ID | None = None
    product_code: str | None = None
    description: str | None = None
    quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = strawberry.field(
        default=None, description="Left out: priced by price resolution on the invoice date.")
    discount_percent: Decimal | None = None


@strawberry.input(description="An invoice from the ERP; the account by id or business id.")
class ImportInvoiceInput:
    external_id: str
    number: str
    invoice_date: date
    lines: list[ImportInvoiceLineInput]
    currency: str = "EUR"
    account_id: strawberry.ID | None = None
    account_business_id: str | None = None
    due_date: date | None = None
    status: InvoiceStatus = InvoiceStatusEnum.SENT  # type: ignore[valid-type]
    notes: str | None = None


@strawberry.input
class ImportInvoicesInput:
    invoices: list[ImportInvoiceInput]


@strawberry.type
class InvoicePayload:
    invoice: Invoice | None
    user_errors: list[UserError]


@strawberry.type(description="Nothing is imported when there are userErrors.")
class ImportInvoicesPayload:
    imported: list[Invoice]
    imported_count: int
    skipped_external_ids: list[str] = strawberry.field(
        description="Invoices already imported before: left as they are.")
    user_errors: list[UserError]


def _invoice_payload(outcome: Any) -> InvoicePayload:
    return payload(InvoicePayload, "invoice", Invoice.from_row, outcome)


def _lines(lines: list[InvoiceLineInput]) -> list[LineInput]:
    return [LineInput(product_id=line.product_id, description=line.description,
                      quantity=line.quantity, unit_price=line.unit_price,
                      discount_percent=line.discount_percent) for line in lines]


@strawberry.type
class BillingMutations:
    @strawberry.mutation(description="A DRAFT invoice with its lines, priced in one go.")
    async def create_invoice(self, info: Info, input: CreateInvoiceInput) -> InvoicePayload:
        return _invoice_payload(await resolve.create_invoice(
            viewer=viewer_of(info), db=info.context.db, account_id=input.account_id,
            currency=input.currency,
            invoice_date=input.invoice_date or datetime.now(
                ZoneInfo(info.context.org_timezone)).date(),
            due_date=input.due_date, number=input.number, notes=input.notes,
            lines=_lines(input.lines)))

    @strawberry.mutation(description="Add lines to a DRAFT invoice.")
    async def add_invoice_lines(self, info: Info, input: AddInvoiceLinesInput
                                ) -> InvoicePayload:
        return _invoice_payload(await resolve.add_invoice_lines(
            viewer=viewer_of(info), db=info.context.db, invoice_id=input.id,
            expected_version=input.expected_version, lines=_lines(input.lines)))

    @strawberry.mutation(description="Change a line of a DRAFT invoice.")
    async def update_invoice_line(self, info: Info, input: UpdateInvoiceLineInput
                                  ) -> InvoicePayload:
        return _invoice_payload(await resolve.update_invoice_line(
            viewer=viewer_of(info), db=info.context.db, line_id=input.id,
            expected_version=input.expected_version, changes=sent_changes(input)))

    @strawberry.mutation(description="Remove a line of a DRAFT invoice.")
    async def remove_invoice_line(self, info: Info, input: RemoveInvoiceLineInput
                                  ) -> InvoicePayload:
        return _invoice_payload(await resolve.remove_invoice_line(
            viewer=viewer_of(info), db=info.context.db, line_id=input.id,
            expected_version=input.expected_version))

    @strawberry.mutation(description="Price a DRAFT's automatic lines again as of its date; "
                         "MANUAL lines keep their price.")
    async def reprice_invoice(self, info: Info, input: InvoiceVersionInput) -> InvoicePayload:
        return _invoice_payload(await resolve.reprice_invoice(
            viewer=viewer_of(info), db=info.context.db, invoice_id=input.id,
            expected_version=input.expected_version))

    @strawberry.mutation(description="DRAFT to SENT: from now on it never changes.")
    async def send_invoice(self, info: Info, input: InvoiceVersionInput) -> InvoicePayload:
        return _invoice_payload(await resolve.change_invoice_status(
            viewer=viewer_of(info), db=info.context.db, invoice_id=input.id,
            expected_version=input.expected_version, status=InvoiceStatusEnum.SENT))

    @strawberry.mutation(description="SENT to PAID.")
    async def mark_invoice_paid(self, info: Info, input: InvoiceVersionInput
                                ) -> InvoicePayload:
        return _invoice_payload(await resolve.change_invoice_status(
            viewer=viewer_of(info), db=info.context.db, invoice_id=input.id,
            expected_version=input.expected_version, status=InvoiceStatusEnum.PAID))

    @strawberry.mutation(description="DRAFT or SENT to CANCELLED.")
    async def cancel_invoice(self, info: Info, input: InvoiceVersionInput) -> InvoicePayload:
        return _invoice_payload(await resolve.change_invoice_status(
            viewer=viewer_of(info), db=info.context.db, invoice_id=input.id,
            expected_version=input.expected_version, status=InvoiceStatusEnum.CANCELLED))

    @strawberry.mutation(description="Admins: import an ERP feed, all or nothing, idempotent "
                         "by externalId (up to 5,000 invoices per call).")
    async def import_invoices(self, info: Info, input: ImportInvoicesInput
                              ) -> ImportInvoicesPayload:
        outcome = await resolve.import_invoices(
            viewer=viewer_of(info), db=info.context.db, invoices=[ImportInvoice(
                external_id=item.external_id, number=item.number,
                invoice_date=item.invoice_date, currency=item.currency,
                account_id=item.account_id, account_business_id=item.account_business_id,
                due_date=item.due_date, status=item.status, notes=item.notes,
                lines=[LineInput(product_id=line.product_id, product_code=line.product_code,
                                 description=line.description, quantity=line.quantity,
                                 unit_price=line.unit_price,
                                 discount_percent=line.discount_percent)
                       for line in item.lines]) for item in input.invoices])
        result = outcome.value
        imported = [Invoice.from_row(row) for row in result.imported] if result else []
        return ImportInvoicesPayload(
            imported=imported, imported_count=len(imported),
            skipped_external_ids=result.skipped if result else [],
            user_errors=user_errors(outcome.errors))


async def billing_field(info: Info, account_id: int, start: date, end: date,
                        granularity: GranularityEnum) -> list[BillingFigure]:
    """Account.billing."""
    figures = await info.context.loaders.get(BillingByAccountLoader, start, end,
                                             granularity).load(account_id)
    return [BillingFigure.from_figure(figure) for figure in figures]



INVOICE_PAGES = (InvoicesByAccountLoader, InvoiceCountByAccountLoader)
