"""Invoices: lists, billed figures, and the mutations: drafts whose lines are priced by
price resolution, the status changes, and the idempotent all-or-nothing ERP import."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from loaders.billing import (
    INVOICE_FILTER,
    INVOICE_LINES,
    INVOICE_ORDER,
    INVOICES,
    invoices_statement,
)
from loaders.container import Loaders
from loaders.pricing import PRODUCTS
from loaders.query import PageArgs
from loaders.users import ACCOUNTS
from models.base import utcnow
from models.billing import Invoice, InvoiceLine, InvoiceStatus
from models.db import Database
from models.pricing import PriceSource
from models.users import Role, Viewer
from resolvers.errors import UserErrorCode, UserErrorData, UserInputError
from resolvers.mutations import (
    Checks,
    Outcome,
    forbidden,
    mutate,
    not_found,
    require_version,
)
from resolvers.pages import Listing, list_rows
from resolvers.policy import can_write, load_owner
from resolvers.pricing import PriceError, PriceRequest, ResolvedPrice, resolve_prices

CENT = Decimal("0.01")
_FOUR_PLACES = Decimal("0.0001")
MAX_QUANTITY = Decimal("1000000000")
MAX_UNIT_PRICE = Decimal("1000000000")
MAX_LINES = 500
MAX_IMPORT = 5000
MAX_REPORTED_ERRORS = 100
PAYMENT_DAYS = 30  # the due date when none is given: net 30

# A concurrent writer got past our checks first and a unique key stopped us.
ON_DUPLICATE = ("someone else used the same invoice number or external id at the same time; "
                "retry")


async def list_invoices(*, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any
                        ) -> Listing:
    return await list_rows(
        loaders=loaders, statement=invoices_statement(loaders.viewer), spec=INVOICE_FILTER,
        filter=filter, orderable=INVOICE_ORDER, default_order=("INVOICE_DATE",),
        order_by=order_by, args=args,
    )


def line_total(quantity: Decimal, unit_price: Decimal, discount_percent: Decimal) -> Decimal:
    """quantity x unit price less the discount, rounded half-even to cents once."""
    exact = quantity * unit_price * (Decimal(100) - discount_percent) / Decimal(100)
    return exact.quantize(CENT, rounding=ROUND_HALF_EVEN)


# --- lines --------------------------------------------------------------------------------


@dataclass
class LineInput:
    product_id: str | None = None
    description: str | None = None
    quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = None  # None: priced by resolution
    discount_percent: Decimal | None = None
    # Imports may name the product by code instead of id.
    product_code: str | None = None


@dataclass
class _Line:
    """A line checked and ready to price: ``unit_price`` None until priced."""

    product_id: int | None
    description: str | None
    quantity: Decimal
    unit_price: Decimal | None
    discount_percent: Decimal
    field_prefix: str


def _decimal(checks: Checks, field_name: str, value: Decimal | None, *, low: Decimal,
             high: Decimal, low_open: bool = False) -> Decimal | None:
    if value is None:
        return None
    too_low = value <= low if low_open else value < low
    if not value.is_finite() or too_low or value > high:
        bound = "more than" if low_open else "from"
        checks.fail(field_name, f"{field_name.rsplit('.', 1)[-1]} is {bound} {low} up to "
                    f"{high}")
        return None
    if value != value.quantize(_FOUR_PLACES):
        checks.fail(field_name, f"{field_name.rsplit('.', 1)[-1]} has at most four decimals")
        return None
    return value


def _check_line(checks: Checks, line: LineInput, prefix: str,
                product_key: int | None) -> _Line | None:
    quantity = _decimal(checks, f"{prefix}quantity", line.quantity, low=Decimal(0),
                        high=MAX_QUANTITY, low_open=True)
    price = _decimal(checks, f"{prefix}unitPrice", line.unit_price, low=Decimal(0),
                     high=MAX_UNIT_PRICE)
    discount = _decimal(checks, f"{prefix}discountPercent", line.discount_percent,
                        low=Decimal(0), high=Decimal(100))
    description = checks.text(f"{prefix}description", line.description, max_length=500)
    if product_key is None and line.product_id is None and line.product_code is None:
        if line.unit_price is None:
            checks.fail(f"{prefix}productId", "a line without a product needs a unitPrice")
        if description is None:
            checks.fail(f"{prefix}description", "a line without a product needs a "
                        "description")
    if quantity is None or (line.unit_price is not None and price is None) or (
            line.discount_percent is not None and discount is None):
        return None
    return _Line(product_key, description, quantity, price, discount or Decimal(0), prefix)


async def _product_keys(session: AsyncSession, checks: Checks, lines: list[LineInput],
                        prefixes: list[str]) -> list[int | None]:
    """Each line's product key (by id or by code), with NOT_FOUND for unknown ones:
    one statement for all lines."""
    keys: list[int | None] = []
    codes: dict[str, int] = {}
    wanted_codes = {line.product_code for line in lines if line.product_code}
    for index, line in enumerate(lines):
        keys.append(checks.global_id(f"{prefixes[index]}productId", line.product_id, "Product")
                    if line.product_id is not None else None)
    wanted_ids = {key for key in keys if key is not None}
    if wanted_ids or wanted_codes:
        statement = select(PRODUCTS.c.id, PRODUCTS.c.code, PRODUCTS.c.active).where(
            PRODUCTS.c.id.in_(wanted_ids) | PRODUCTS.c.code.in_(wanted_codes))
        found = set()
        # A deactivated product goes on no new line; the lines that have it keep it (and
        # are repriced as before: they never come through here).
        retired: dict[int, str] = {}
        for row in await session.execute(statement):
            found.add(row.id)
            codes[row.code] = row.id
            if not row.active:
                retired[row.id] = row.code
        for index, line in enumerate(lines):
            if keys[index] is not None and keys[index] not in found:
                checks.fail(f"{prefixes[index]}productId", "product not found",
                            UserErrorCode.NOT_FOUND)
                keys[index] = None
            elif keys[index] is None and line.product_code:
                keys[index] = codes.get(line.product_code)
                if keys[index] is None:
                    checks.fail(f"{prefixes[index]}productCode",
                                f"no product has the code {line.product_code!r}",
                                UserErrorCode.NOT_FOUND)
            if keys[index] in retired:
                named = "productId" if line.product_id is not None else "productCode"
                checks.fail(f"{prefixes[index]}{named}", f"product {retired[keys[index]]} "
                            "is deactivated: it cannot go on new invoice lines")
                keys[index] = None
    return keys


async def _price(session: AsyncSession, checks: Checks, wanted: list[tuple[_Line, int, date,
                                                                            str]]
                 ) -> dict[int, ResolvedPrice]:
    """Price the lines without a unit price, all in one resolution; (line, account,
    date, currency). Returns the price per position in ``wanted``."""
    requests = [(position, PriceRequest(account, line.product_id, line.quantity, on,
                                        currency))
                for position, (line, account, on, currency) in enumerate(wanted)
                if line.unit_price is None and line.product_id is not None]
    connection = await session.connection()
    found = await resolve_prices(connection, [request for _, request in requests])
    prices: dict[int, ResolvedPrice] = {}
    for (position, _request), price in zip(requests, found, strict=True):
        if isinstance(price, PriceError):
            checks.fail(f"{wanted[position][0].field_prefix}unitPrice", str(price))
        else:
            prices[position] = price
    return prices


def _line_values(line: _Line, price: ResolvedPrice | None) -> dict[str, Any]:
    if price is not None:
        unit_price, source, book = price.unit_price, price.source, (
            price.price_book.id if price.price_book is not None else None)
    else:
        assert line.unit_price is not None
        unit_price, source, book = line.unit_price, PriceSource.MANUAL, None
    return {
        "product_id": line.product_id, "description": line.description,
        "quantity": line.quantity, "unit_price": unit_price,
        "discount_percent": line.discount_percent, "price_source": source,
        "price_book_id": book,
        "line_total": line_total(line.quantity, unit_price, line.discount_percent),
    }


async def _refresh_total(session: AsyncSession, invoice: Invoice) -> None:
    await session.flush()
    total = (await session.execute(
        select(func.coalesce(func.sum(INVOICE_LINES.c.line_total), 0))
        .where(INVOICE_LINES.c.invoice_id == invoice.id))).scalar_one()
    invoice.total = total if isinstance(total, Decimal) else Decimal(total)
    # Every change to an invoice or its lines takes a new version, total changed or not.
    invoice.updated_at = utcnow()


# --- invoices -----------------------------------------------------------------------------


async def _account_for_billing(session: AsyncSession, viewer: Viewer, checks: Checks,
                               gid: str) -> Any:
    key = checks.global_id("accountId", gid, "Account")
    checks.raise_if_any()
    account = (await session.execute(select(ACCOUNTS.c.id, ACCOUNTS.c.owner_id)
                                     .where(ACCOUNTS.c.id == key))).first()
    if account is None:
        raise not_found("accountId", "account")
    owner = await load_owner(session, account.owner_id)
    if owner is None or not can_write(viewer, owner):
        raise forbidden("you cannot bill this account", "accountId")
    return account


async def _prepared_lines(session: AsyncSession, checks: Checks, *, account_id: int,
                          on: date, currency: str | None, lines: list[LineInput], prefix: str
                          ) -> list[dict[str, Any]]:
    """The lines checked and priced (all in one resolution), as column values; raises
    the collected userErrors."""
    if len(lines) > MAX_LINES:
        raise UserInputError.one(prefix.rstrip("."), UserErrorCode.VALIDATION,
                                 f"at most {MAX_LINES} lines per call")
    prefixes = [f"{prefix}{index}." for index in range(len(lines))]
    keys = await _product_keys(session, checks, lines, prefixes)
    checked = [_check_line(checks, line, prefixes[i], keys[i]) for i, line in enumerate(lines)]
    ready = [line for line in checked if line is not None]
    prices = await _price(session, checks, [(line, account_id, on, currency or "")
                                            for line in ready]) if currency else {}
    checks.raise_if_any()
    return [_line_values(line, prices.get(offset)) for offset, line in enumerate(ready)]


async def create_invoice(
    *, viewer: Viewer, db: Database, account_id: str, currency: str, invoice_date: date,
    due_date: date | None, number: str | None, notes: str | None, lines: list[LineInput],
) -> Outcome[Invoice]:
    async def action() -> Invoice:
        if viewer.role is Role.PARTNER:
            raise forbidden("partners cannot bill")
        async with db.transaction() as session:
            checks = Checks()
            account = await _account_for_billing(session, viewer, checks, account_id)
            currency_ = checks.currency("currency", currency)
            number_ = checks.text("number", number, max_length=50)
            if number_ is not None and (await session.execute(
                    select(INVOICES.c.id).where(INVOICES.c.number == number_))).first():
                checks.fail("number", f"invoice number {number_} is taken",
                            UserErrorCode.CONFLICT)
            due = due_date or invoice_date + timedelta(days=PAYMENT_DAYS)
            if due < invoice_date:
                checks.fail("dueDate", "dueDate comes before invoiceDate")
            values = await _prepared_lines(session, checks, account_id=account.id,
                                           on=invoice_date, currency=currency_, lines=lines,
                                           prefix="lines.")
            checks.raise_if_any()
            invoice = Invoice(
                account_id=account.id, number=number_ or f"pending-{uuid.uuid4().hex}",
                invoice_date=invoice_date, due_date=due, status=InvoiceStatus.DRAFT,
                currency=currency_, notes=checks.text("notes", notes, max_length=5000),
                total=sum((v["line_total"] for v in values), Decimal("0.00")))
            session.add(invoice)
            await session.flush()
            if number_ is None:
                # Numbered from its id, written without a new version: it is being created.
                number_ = await _free_number(session, f"INV-{invoice.id:06d}")
                await session.execute(update(INVOICES).where(INVOICES.c.id == invoice.id)
                                      .values(number=number_))
                set_committed_value(invoice, "number", number_)
            session.add_all([InvoiceLine(invoice_id=invoice.id, position=position, **v)
                             for position, v in enumerate(values, start=1)])
            await session.flush()
        return invoice

    return await mutate(action, on_duplicate=ON_DUPLICATE)


async def _free_number(session: AsyncSession, wanted: str) -> str:
    """``wanted``, or ``wanted-2``, ``-3``... when a number typed by hand took it."""
    taken = set((await session.execute(select(INVOICES.c.number).where(
        INVOICES.c.number.startswith(wanted)))).scalars())
    number, suffix = wanted, 1
    while number in taken:
        suffix += 1
        number = f"{wanted}-{suffix}"
    return number


async def _draft(session: AsyncSession, viewer: Viewer, invoice_key: int,
                 expected_version: int, *, field_name: str = "id") -> Invoice:
    """The invoice, writable by the viewer, at the expected version, still a DRAFT."""
    invoice = await _writable(session, viewer, invoice_key, expected_version, field_name)
    if invoice.status is not InvoiceStatus.DRAFT:
        raise UserInputError.one(field_name, UserErrorCode.VALIDATION,
                                 f"the invoice is {invoice.status.value}: only a DRAFT "
                                 "invoice changes")
    return invoice


async def _writable(session: AsyncSession, viewer: Viewer, invoice_key: int,
                    expected_version: int, field_name: str = "id") -> Invoice:
    if viewer.role is Role.PARTNER:
        raise forbidden("partners cannot bill")
    invoice = await session.get(Invoice, invoice_key)
    if invoice is None:
        raise not_found(field_name, "invoice")
    account = (await session.execute(select(ACCOUNTS.c.owner_id).where(
        ACCOUNTS.c.id == invoice.account_id))).scalar_one()
    owner = await load_owner(session, account)
    if owner is None or not can_write(viewer, owner):
        raise forbidden("you cannot change this invoice", field_name)
    require_version(invoice.version, expected_version)
    return invoice


def _invoice_key(gid: str, field_name: str = "id") -> int:
    checks = Checks()
    key = checks.global_id(field_name, gid, "Invoice")
    checks.raise_if_any()
    assert key is not None
    return key


async def add_invoice_lines(*, viewer: Viewer, db: Database, invoice_id: str,
                            expected_version: int, lines: list[LineInput]) -> Outcome[Invoice]:
    async def action() -> Invoice:
        async with db.transaction() as session:
            invoice = await _draft(session, viewer, _invoice_key(invoice_id), expected_version)
            last = (await session.execute(
                select(func.coalesce(func.max(INVOICE_LINES.c.position), 0))
                .where(INVOICE_LINES.c.invoice_id == invoice.id))).scalar_one()
            checks = Checks()
            if not lines:
                checks.fail("lines", "give at least one line")
                checks.raise_if_any()
            values = await _prepared_lines(session, checks, account_id=invoice.account_id,
                                           on=invoice.invoice_date, currency=invoice.currency,
                                           lines=lines, prefix="lines.")
            session.add_all([InvoiceLine(invoice_id=invoice.id, position=position, **v)
                             for position, v in enumerate(values, start=int(last) + 1)])
            await _refresh_total(session, invoice)
            await session.flush()
        return invoice

    return await mutate(action)


async def _line(session: AsyncSession, gid: str) -> InvoiceLine:
    checks = Checks()
    key = checks.global_id("id", gid, "InvoiceLine")
    checks.raise_if_any()
    line = await session.get(InvoiceLine, key)
    if line is None:
        raise not_found("id", "invoice line")
    return line


async def update_invoice_line(*, viewer: Viewer, db: Database, line_id: str,
                              expected_version: int, changes: dict[str, Any]
                              ) -> Outcome[Invoice]:
    """Change a line of a DRAFT invoice; ``expected_version`` is the invoice's. A unit
    price makes the line MANUAL; a null unit price hands it back to price resolution."""
    async def action() -> Invoice:
        async with db.transaction() as session:
            line = await _line(session, line_id)
            invoice = await _draft(session, viewer, line.invoice_id, expected_version)
            checks = Checks()
            merged = LineInput(
                product_id=None, description=changes.get("description", line.description),
                quantity=changes.get("quantity", line.quantity),
                unit_price=changes.get("unit_price", line.unit_price
                                       if line.price_source is PriceSource.MANUAL else None),
                discount_percent=changes.get("discount_percent", line.discount_percent))
            product_key = line.product_id
            if "product_id" in changes:
                if changes["product_id"] is None:
                    product_key = None
                else:
                    merged.product_id = changes["product_id"]
                    [product_key] = await _product_keys(session, checks, [merged], [""])
            if "quantity" in changes and changes["quantity"] is None:
                checks.fail("quantity", "quantity cannot be null")
            checked = _check_line(checks, merged, "", product_key)
            if checked is None:
                checks.raise_if_any()
            assert checked is not None
            prices = await _price(session, checks, [(checked, invoice.account_id,
                                                     invoice.invoice_date, invoice.currency)])
            checks.raise_if_any()
            for key, value in _line_values(checked, prices.get(0)).items():
                setattr(line, key, value)
            await _refresh_total(session, invoice)
            await session.flush()
        return invoice

    return await mutate(action)


async def remove_invoice_line(*, viewer: Viewer, db: Database, line_id: str,
                              expected_version: int) -> Outcome[Invoice]:
    async def action() -> Invoice:
        async with db.transaction() as session:
            line = await _line(session, line_id)
            invoice = await _draft(session, viewer, line.invoice_id, expected_version)
            await session.delete(line)
            await _refresh_total(session, invoice)
            await session.flush()
        return invoice

    return await mutate(action)


async def reprice_invoice(*, viewer: Viewer, db: Database, invoice_id: str,
                          expected_version: int) -> Outcome[Invoice]:
    """Price the DRAFT's automatically priced lines again, as of its invoice date (a new
    agreement, a changed book); MANUAL lines keep their price."""
    async def action() -> Invoice:
        async with db.transaction() as session:
            invoice = await _draft(session, viewer, _invoice_key(invoice_id), expected_version)
            lines = list((await session.execute(
                select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id,
                                          InvoiceLine.price_source != PriceSource.MANUAL)
                .order_by(InvoiceLine.position))).scalars())
            checks = Checks()
            ready = [_Line(line.product_id, line.description, line.quantity, None,
                           line.discount_percent, f"lines.{line.position}.") for line in lines]
            prices = await _price(session, checks, [(line, invoice.account_id,
                                                     invoice.invoice_date, invoice.currency)
                                                    for line in ready])
            checks.raise_if_any()
            for position, (line, fresh) in enumerate(zip(lines, ready, strict=True)):
                for key, value in _line_values(fresh, prices.get(position)).items():
                    setattr(line, key, value)
            await _refresh_total(session, invoice)
            await session.flush()
        return invoice

    return await mutate(action)


_NEXT = {
    InvoiceStatus.SENT: (InvoiceStatus.DRAFT,),
    InvoiceStatus.PAID: (InvoiceStatus.SENT,),
    InvoiceStatus.CANCELLED: (InvoiceStatus.DRAFT, InvoiceStatus.SENT),
}


async def change_invoice_status(*, viewer: Viewer, db: Database, invoice_id: str,
                                expected_version: int, status: InvoiceStatus
                                ) -> Outcome[Invoice]:
    """sendInvoice (DRAFT to SENT), markInvoicePaid (SENT to PAID), cancelInvoice (DRAFT
    or SENT to CANCELLED). A SENT invoice's lines and amounts never change again."""
    async def action() -> Invoice:
        async with db.transaction() as session:
            invoice = await _writable(session, viewer, _invoice_key(invoice_id),
                                      expected_version)
            if invoice.status not in _NEXT[status]:
                allowed = " or ".join(s.value for s in _NEXT[status])
                raise UserInputError.one("id", UserErrorCode.VALIDATION,
                                         f"the invoice is {invoice.status.value}; only a "
                                         f"{allowed} invoice becomes {status.value}")
            if status is InvoiceStatus.SENT and not (await session.execute(
                    select(INVOICE_LINES.c.id).where(INVOICE_LINES.c.invoice_id == invoice.id)
                    .limit(1))).first():
                raise UserInputError.one("id", UserErrorCode.VALIDATION,
                                         "an invoice without lines cannot be sent")
            invoice.status = status
            await session.flush()
        return invoice

    return await mutate(action)


# --- the ERP import -----------------------------------------------------------------------


@dataclass
class ImportInvoice:
    external_id: str
    number: str
    invoice_date: date
    currency: str
    lines: list[LineInput]
    account_id: str | None = None
    account_business_id: str | None = None
    due_date: date | None = None
    status: InvoiceStatus = InvoiceStatus.SENT
    notes: str | None = None


@dataclass
class ImportResult:
    imported: list[Any] = field(default_factory=list)  # invoice rows
    skipped: list[str] = field(default_factory=list)  # external ids already there


async def import_invoices(*, viewer: Viewer, db: Database, invoices: list[ImportInvoice]
                          ) -> Outcome[ImportResult]:
    """Import an ERP feed: all or nothing, idempotent by external id (an invoice whose
    external id exists already is skipped, not imported twice). Every problem is
    reported at once, naming the invoice by its position and external id."""
    async def action() -> ImportResult:
        if not viewer.is_admin:
            raise forbidden("only admins import invoices")
        if len(invoices) > MAX_IMPORT:
            raise UserInputError.one("invoices", UserErrorCode.VALIDATION,
                                     f"at most {MAX_IMPORT} invoices per call")
        async with db.transaction() as session:
            checks = _Named(invoices)
            seen_external: dict[str, int] = {}
            seen_numbers: dict[str, int] = {}
            for index, item in enumerate(invoices):
                prefix = f"invoices.{index}."
                external = checks.text(f"{prefix}externalId", item.external_id,
                                       max_length=100, required=True)
                number = checks.text(f"{prefix}number", item.number, max_length=50,
                                     required=True)
                if external in seen_external:
                    checks.fail(f"{prefix}externalId", "the same externalId is given twice "
                                f"(also invoices.{seen_external[external]})")
                if number in seen_numbers:
                    checks.fail(f"{prefix}number", "the same number is given twice (also "
                                f"invoices.{seen_numbers[number]})")
                seen_external.setdefault(external, index)  # type: ignore[arg-type]
                seen_numbers.setdefault(number, index)  # type: ignore[arg-type]
                checks.currency(f"{prefix}currency", item.currency)
                if item.due_date is not None and item.due_date < item.invoice_date:
                    checks.fail(f"{prefix}dueDate", "dueDate comes before invoiceDate")
                if not item.lines:
                    checks.fail(f"{prefix}lines", "an invoice needs at least one line")
                if len(item.lines) > MAX_LINES:
                    checks.fail(f"{prefix}lines", f"at most {MAX_LINES} lines per invoice")
            existing = {row.external_id for row in await session.execute(
                select(INVOICES.c.external_id).where(INVOICES.c.external_id.in_(
                    [i.external_id for i in invoices if i.external_id])))}
            todo = [(index, item) for index, item in enumerate(invoices)
                    if item.external_id not in existing]
            taken = {row.number for row in await session.execute(
                select(INVOICES.c.number).where(INVOICES.c.number.in_(
                    [item.number for _, item in todo if item.number])))}
            for index, item in todo:
                if item.number in taken:
                    checks.fail(f"invoices.{index}.number", f"invoice number {item.number} "
                                "is taken by another invoice", UserErrorCode.CONFLICT)
            accounts = await _import_accounts(session, checks, todo)
            all_lines = [(index, n, line) for index, item in todo
                         for n, line in enumerate(item.lines)]
            prefixes = [f"invoices.{index}.lines.{n}." for index, n, _ in all_lines]
            keys = await _product_keys(session, checks, [line for _, _, line in all_lines],
                                       prefixes)
            checked: list[tuple[int, _Line]] = []
            for (index, _n, line), prefix, key in zip(all_lines, prefixes, keys, strict=True):
                ready = _check_line(checks, line, prefix, key)
                if ready is not None and index in accounts:
                    checked.append((index, ready))
            items = dict(todo)
            prices = await _price(session, checks, [
                (line, accounts[index], items[index].invoice_date, items[index].currency)
                for index, line in checked])
            checks.raise_if_any()
            result = ImportResult(skipped=sorted(existing))
            if not todo:
                return result
            rows = [{
                "account_id": accounts[index], "number": item.number,
                "invoice_date": item.invoice_date,
                "due_date": item.due_date or item.invoice_date + timedelta(days=PAYMENT_DAYS),
                "status": item.status, "currency": item.currency,
                "external_id": item.external_id, "notes": item.notes, "total": Decimal(0),
            } for index, item in todo]
            totals: dict[int, Decimal] = {}
            line_rows: list[tuple[int, dict[str, Any]]] = []
            positions: dict[int, int] = {}
            for position, (index, line) in enumerate(checked):
                values = _line_values(line, prices.get(position))
                positions[index] = positions.get(index, 0) + 1
                totals[index] = totals.get(index, Decimal(0)) + values["line_total"]
                line_rows.append((index, {**values, "position": positions[index]}))
            for row, (index, _item) in zip(rows, todo, strict=True):
                row["total"] = totals.get(index, Decimal(0))
            # Core executemany with every key in every row (NULLs too): one statement per
            # table however many invoices, where ORM bulk inserts split on differing keys.
            now = utcnow()
            stamps = {"version": 1, "created_at": now, "updated_at": now}
            await session.execute(insert(INVOICES).execution_options(render_nulls=True),
                                  [{**row, **stamps} for row in rows])
            imported = list((await session.execute(
                select(INVOICES).where(INVOICES.c.external_id.in_(
                    [item.external_id for _, item in todo])).order_by(INVOICES.c.id))).all())
            by_external = {row.external_id: row.id for row in imported}
            invoice_ids = {index: by_external[item.external_id] for index, item in todo}
            await session.execute(
                insert(INVOICE_LINES).execution_options(render_nulls=True),
                [{**values, "invoice_id": invoice_ids[index], "created_at": now,
                  "updated_at": now} for index, values in line_rows])
            result.imported = imported
        return result

    return await mutate(action, on_duplicate=ON_DUPLICATE)


class _Named(Checks):
    """Checks whose messages name the imported invoice by its external id, and that
    report at most MAX_REPORTED_ERRORS problems (and how many more there were)."""

    def __init__(self, invoices: list[ImportInvoice]) -> None:
        super().__init__()
        self._invoices = invoices
        self._more = 0

    def fail(self, field_name: str | None, message: str,
             code: UserErrorCode = UserErrorCode.VALIDATION) -> None:
        if len(self.errors) >= MAX_REPORTED_ERRORS:
            self._more += 1
            return
        if field_name and field_name.startswith("invoices."):
            index = int(field_name.split(".")[1])
            external = self._invoices[index].external_id
            message = f"invoice {external!r}: {message}"
        super().fail(field_name, message, code)

    def raise_if_any(self) -> None:
        if self._more:
            self.errors.append(UserErrorData("invoices", UserErrorCode.VALIDATION,
                                             f"and {self._more} more problems"))
            self._more = 0
        super().raise_if_any()


async def _import_accounts(session: AsyncSession, checks: Checks,
                           todo: list[tuple[int, ImportInvoice]]) -> dict[int, int]:
    """Each invoice's account key, by global id or by business id: one statement."""
    keys: dict[int, int | None] = {}
    business = {item.account_business_id for _, item in todo if item.account_business_id}
    for index, item in todo:
        if item.account_id is not None:
            keys[index] = checks.global_id(f"invoices.{index}.accountId", item.account_id,
                                           "Account")
        elif item.account_business_id is None:
            checks.fail(f"invoices.{index}.accountId", "give accountId or accountBusinessId")
    ids = {key for key in keys.values() if key is not None}
    found: set[int] = set()
    by_business: dict[str, int] = {}
    if ids or business:
        for row in await session.execute(select(ACCOUNTS.c.id, ACCOUNTS.c.business_id).where(
                ACCOUNTS.c.id.in_(ids) | ACCOUNTS.c.business_id.in_(business))):
            found.add(row.id)
            if row.business_id:
                by_business[row.business_id] = row.id
    accounts: dict[int, int] = {}
    for index, item in todo:
        key = keys.get(index)
        if item.account_id is not None:
            if key is not None and key not in found:
                checks.fail(f"invoices.{index}.accountId", "account not found",
                            UserErrorCode.NOT_FOUND)
            elif key is not None:
                accounts[index] = key
        elif item.account_business_id is not None:
            if item.account_business_id in by_business:
                accounts[index] = by_business[item.account_business_id]
            else:
                checks.fail(f"invoices.{index}.accountBusinessId",
                            f"no account has the business id {item.account_business_id!r}",
                            UserErrorCode.NOT_FOUND)
    return accounts
