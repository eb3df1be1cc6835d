"""The catalogue and pricing: product and price book lists, price resolution (one
rule used everywhere), and the price book, entry and agreement mutations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from loaders.accounts import AccountByIdLoader
from loaders.base import Loader
from loaders.billing import INVOICE_LINES
from loaders.container import Loaders
from loaders.errors import BadUserInput, Forbidden
from loaders.pricing import (
    AGREEMENTS,
    OFFERING_AREAS,
    PRICE_BOOK_ENTRIES,
    PRICE_BOOK_FILTER,
    PRICE_BOOK_ORDER,
    PRICE_BOOKS,
    PRODUCT_FILTER,
    PRODUCT_ORDER,
    PRODUCTS,
    AgreementsByAccountLoader,
    PriceBookByIdLoader,
    offering_areas_statement,
    price_books_statement,
    products_statement,
)
from loaders.query import PageArgs
from loaders.users import ACCOUNTS
from models.base import plain
from models.db import Database
from models.pricing import AccountPriceBook, PriceBook, PriceBookEntry, PriceSource, Product
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
from resolvers.policy import Owner, load_owner

# A concurrent writer got past our checks first and a unique key stopped us.
ON_DUPLICATE = "someone else made the same change at the same time; reload and retry"


async def list_products(
    *, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any
) -> Listing:
    return await list_rows(
        loaders=loaders, statement=products_statement(loaders.viewer), spec=PRODUCT_FILTER,
        filter=filter, orderable=PRODUCT_ORDER, default_order=("CODE",), order_by=order_by,
        args=args,
    )


async def list_offering_areas(*, loaders: Loaders, include_inactive: bool = True) -> list[Any]:
    statement = offering_areas_statement(loaders.viewer).order_by(OFFERING_AREAS.c.code)
    if not include_inactive:
        statement = statement.where(OFFERING_AREAS.c.active.is_(True))
    async with loaders.db.read() as connection:
        return list((await connection.execute(statement)).all())


# --- price resolution ---------------------------------------------------------------------


@dataclass(frozen=True)
class PriceRequest:
    account_id: int
    product_id: int
    quantity: Decimal
    on: date
    # The currency to price in: an invoice's. None: the agreement's currency when the
    # account has one on the date, else the product's.
    currency: str | None = None


@dataclass(frozen=True)
class ResolvedPrice:
    unit_price: Decimal
    currency: str
    source: PriceSource
    price_book: Any | None  # price_books row
    entry: Any | None  # price_book_entries row
    explanation: str


class PriceError(Exception):
    """No price can be given (unknown product, a currency with no price): the message
    says why. The caller decides whether that is a userError or BAD_USER_INPUT."""


def _valid_on(row: Any, on: date) -> bool:
    return (row.valid_from is None or row.valid_from <= on) and (
        row.valid_to is None or on <= row.valid_to)


def _period(row: Any) -> str:
    start = row.valid_from.isoformat() if row.valid_from else "open"
    end = row.valid_to.isoformat() if row.valid_to else "open"
    return f"{start} to {end}"


def _tier(entries: list[Any], quantity: Decimal) -> Any | None:
    """The entry whose tier the quantity reaches: the highest minimum quantity not above
    it (entries come ordered by minimum quantity)."""
    found = None
    for entry in entries:
        if entry.min_quantity <= quantity:
            found = entry
    return found


def _tier_text(entry: Any, currency: str) -> str:
    if entry.min_quantity > 1:
        return f"tier from {plain(entry.min_quantity)} units at {entry.unit_price} {currency}"
    return f"{entry.unit_price} {currency}"


async def resolve_prices(connection: AsyncConnection, requests: list[PriceRequest]
                         ) -> list[ResolvedPrice | PriceError]:
    """Price every request in four statements, however many there are: the products,
    the accounts' agreements, the standard books, and the entries of those books for
    those products. The rule, per request: the agreement valid on the date, best tier for
    the quantity; else the standard book of the currency; else the product's list price.
    A book or list price in another currency is never converted: that is a PriceError."""
    if not requests:
        return []
    product_ids = {r.product_id for r in requests}
    products = {row.id: row for row in await connection.execute(
        select(PRODUCTS.c.id, PRODUCTS.c.code, PRODUCTS.c.list_price, PRODUCTS.c.currency)
        .where(PRODUCTS.c.id.in_(product_ids)))}
    agreements: dict[int, list[Any]] = {}
    books: dict[int, Any] = {}
    for row in await connection.execute(
            select(AGREEMENTS)
            .where(AGREEMENTS.c.account_id.in_({r.account_id for r in requests}))
            .order_by(AGREEMENTS.c.valid_from.desc(), AGREEMENTS.c.id.desc())):
        agreements.setdefault(row.account_id, []).append(row)
    book_ids = {row.price_book_id for rows in agreements.values() for row in rows}
    standard: dict[str, list[Any]] = {}
    for book in await connection.execute(select(PRICE_BOOKS).where(
            or_(PRICE_BOOKS.c.id.in_(book_ids), PRICE_BOOKS.c.is_standard.is_(True)))):
        books[book.id] = book
        if book.is_standard:
            standard.setdefault(book.currency, []).append(book)
    entries: dict[tuple[int, int], list[Any]] = {}
    for entry in await connection.execute(
            select(PRICE_BOOK_ENTRIES)
            .where(PRICE_BOOK_ENTRIES.c.price_book_id.in_(books),
                   PRICE_BOOK_ENTRIES.c.product_id.in_(product_ids))
            .order_by(PRICE_BOOK_ENTRIES.c.min_quantity)):
        entries.setdefault((entry.price_book_id, entry.product_id), []).append(entry)

    def one(request: PriceRequest) -> ResolvedPrice | PriceError:
        product = products.get(request.product_id)
        if product is None:
            return PriceError("product not found")
        notes: list[str] = []
        agreed = [(a, books[a.price_book_id]) for a in agreements.get(request.account_id, [])
                  if _valid_on(a, request.on) and books[a.price_book_id].active
                  and _valid_on(books[a.price_book_id], request.on)]
        currency = request.currency or (agreed[0][1].currency if agreed else product.currency)
        in_currency = [(a, book) for a, book in agreed if book.currency == currency]
        if agreed and not in_currency:
            names = ", ".join(f"{b.name} ({b.currency})" for _, b in agreed)
            return PriceError(f"the account's agreed price book {names} cannot price in "
                              f"{currency}: prices are never converted")
        for agreement, book in in_currency:
            entry = _tier(entries.get((book.id, product.id), []), request.quantity)
            if entry is not None:
                return ResolvedPrice(entry.unit_price, currency, PriceSource.AGREEMENT, book,
                                     entry, f"agreed price book {book.name} (agreement "
                                     f"{_period(agreement)}): {_tier_text(entry, currency)}")
            notes.append(f"the agreed price book {book.name} has no price for "
                         f"{product.code} at quantity {plain(request.quantity)}")
        for book in standard.get(currency, []):
            if not (book.active and _valid_on(book, request.on)):
                continue
            entry = _tier(entries.get((book.id, product.id), []), request.quantity)
            if entry is not None:
                return ResolvedPrice(entry.unit_price, currency, PriceSource.STANDARD, book,
                                     entry, "; ".join([*notes, f"standard price book "
                                                       f"{book.name}: "
                                                       f"{_tier_text(entry, currency)}"]))
            notes.append(f"the standard price book {book.name} has no price for "
                         f"{product.code}")
        if product.currency != currency:
            return PriceError(f"no price book prices {product.code} in {currency}, and its "
                              f"list price is in {product.currency}: prices are never "
                              "converted")
        return ResolvedPrice(product.list_price, currency, PriceSource.LIST_PRICE, None, None,
                             "; ".join([*notes, f"list price of {product.code}: "
                                                f"{product.list_price} {currency}"]))

    return [one(request) for request in requests]


MAX_PRICE_ITEMS = 1000


async def price_items(*, loaders: Loaders, account_id: int, items: list[tuple[int, Decimal]],
                      on: date, currency: str | None) -> list[ResolvedPrice]:
    """resolvePrice and resolvePrices: BAD_USER_INPUT naming the first item that has
    no price."""
    viewer = loaders.viewer
    if viewer.role is Role.PARTNER:
        raise Forbidden("partners have no access to prices")
    if len(items) > MAX_PRICE_ITEMS:
        raise BadUserInput(f"at most {MAX_PRICE_ITEMS} items per call")
    for index, (_product, quantity) in enumerate(items):
        if not quantity.is_finite() or quantity <= 0:
            raise BadUserInput(f"items.{index}.quantity must be more than 0")
    if currency is not None:
        _currency_code(currency)
    account = await loaders.get(AccountByIdLoader).load(account_id)
    if account is None:
        raise BadUserInput("accountId: no such account")
    async with loaders.db.read() as connection:
        found = await resolve_prices(connection, [
            PriceRequest(account_id, product, quantity, on, currency)
            for product, quantity in items])
    for index, price in enumerate(found):
        if isinstance(price, PriceError):
            where = f"items.{index}" if len(items) > 1 else "productId"
            raise BadUserInput(f"{where}: {price}")
    return found  # type: ignore[return-value]


def _currency_code(value: str) -> str:
    if not is_currency_code(value):
        raise BadUserInput("currency is a three-letter ISO 4217 code such as EUR")
    return value


# --- price books, entries and agreements --------------------------------------------------

MAX_UNIT_PRICE = Decimal("1000000000")
_FOUR_PLACES = Decimal("0.0001")


def _admin_only(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise forbidden("only admins keep price books")


def _period_check(checks: Checks, valid_from: date | None, valid_to: date | None) -> None:
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        checks.fail("validTo", "validTo comes before validFrom")


async def _standard_taken(session: AsyncSession, currency: str, except_id: int | None
                          ) -> str | None:
    statement = select(PRICE_BOOKS.c.name).where(PRICE_BOOKS.c.currency == currency,
                                                 PRICE_BOOKS.c.is_standard.is_(True))
    if except_id is not None:
        statement = statement.where(PRICE_BOOKS.c.id != except_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def _name_taken(session: AsyncSession, name: str, except_id: int | None) -> bool:
    statement = select(PRICE_BOOKS.c.id).where(PRICE_BOOKS.c.name == name)
    if except_id is not None:
        statement = statement.where(PRICE_BOOKS.c.id != except_id)
    return (await session.execute(statement)).first() is not None


async def create_price_book(*, viewer: Viewer, db: Database, name: str, currency: str,
                            valid_from: date | None, valid_to: date | None, is_standard: bool
                            ) -> Outcome[PriceBook]:
    async def action() -> PriceBook:
        _admin_only(viewer)
        async with db.transaction() as session:
            checks = Checks()
            name_ = checks.text("name", name, max_length=200, required=True)
            currency_ = checks.currency("currency", currency)
            _period_check(checks, valid_from, valid_to)
            if name_ and await _name_taken(session, name_, None):
                checks.fail("name", f"a price book named {name_!r} exists already",
                            UserErrorCode.CONFLICT)
            if is_standard and currency_ and (
                    taken := await _standard_taken(session, currency_, None)):
                checks.fail("isStandard", f"{taken} is the standard price book of "
                            f"{currency_} already", UserErrorCode.CONFLICT)
            checks.raise_if_any()
            book = PriceBook(name=name_, currency=currency_, valid_from=valid_from,
                             valid_to=valid_to, is_standard=is_standard, active=True)
            session.add(book)
            await session.flush()
        return book

    return await mutate(action, on_duplicate=ON_DUPLICATE)


async def update_price_book(*, viewer: Viewer, db: Database, book_id: str,
                            expected_version: int, changes: dict[str, Any]
                            ) -> Outcome[PriceBook]:
    """A book's currency never changes: its entries and the invoices priced by it are
    in that currency."""
    async def action() -> PriceBook:
        _admin_only(viewer)
        async with db.transaction() as session:
            checks = Checks()
            book = await _get(session, checks, PriceBook, "id", book_id, "price book")
            require_version(book.version, expected_version)
            if changes.get("is_standard") and (
                    taken := await _standard_taken(session, book.currency, book.id)):
                checks.fail("isStandard", f"{taken} is the standard price book of "
                            f"{book.currency} already", UserErrorCode.CONFLICT)
            if "name" in changes and (name := checks.text(
                    "name", changes["name"], max_length=200, required=True)):
                if await _name_taken(session, name, book.id):  # before any change: no flush
                    checks.fail("name", f"a price book named {name!r} exists already",
                                UserErrorCode.CONFLICT)
                book.name = name
            for key in ("valid_from", "valid_to"):
                if key in changes:
                    setattr(book, key, changes[key])
            _period_check(checks, book.valid_from, book.valid_to)
            for key, field_name in (("is_standard", "isStandard"), ("active", "active")):
                if key in changes:
                    if changes[key] is None:
                        checks.fail(field_name, f"{field_name} cannot be null")
                    else:
                        setattr(book, key, changes[key])
            checks.raise_if_any()
            await session.flush()
        return book

    return await mutate(action, on_duplicate=ON_DUPLICATE)


async def delete_price_book(*, viewer: Viewer, db: Database, book_id: str,
                            expected_version: int) -> Outcome[int]:
    """Only a book nothing refers to: one with agreements or invoice lines priced by it
    is deactivated instead (active: false)."""
    async def action() -> int:
        _admin_only(viewer)
        async with db.transaction() as session:
            checks = Checks()
            book = await _get(session, checks, PriceBook, "id", book_id, "price book")
            require_version(book.version, expected_version)
            used = (await session.execute(select(AGREEMENTS.c.id).where(
                AGREEMENTS.c.price_book_id == book.id).limit(1))).first() or (
                await session.execute(select(INVOICE_LINES.c.id).where(
                    INVOICE_LINES.c.price_book_id == book.id).limit(1))).first()
            if used:
                raise UserInputError.one("id", UserErrorCode.VALIDATION,
                                         "the price book has agreements or priced invoice "
                                         "lines; deactivate it instead")
            key = book.id
            await session.execute(delete(PRICE_BOOK_ENTRIES).where(
                PRICE_BOOK_ENTRIES.c.price_book_id == key))
            await session.delete(book)
        return key

    return await mutate(action)


def _unit_price(checks: Checks, value: Decimal | None, field_name: str = "unitPrice"
                ) -> Decimal | None:
    if value is None or not value.is_finite() or value < 0 or value >= MAX_UNIT_PRICE:
        checks.fail(field_name, f"{field_name} is between 0 and {MAX_UNIT_PRICE}")
        return None
    if value != value.quantize(_FOUR_PLACES):
        checks.fail(field_name, f"{field_name} has at most four decimals")
        return None
    return value


def _min_quantity(checks: Checks, value: Decimal | None) -> Decimal | None:
    if value is None or not value.is_finite() or value < 0 or value >= MAX_UNIT_PRICE:
        checks.fail("minQuantity", "minQuantity is a quantity from 0 up")
        return None
    if value != value.quantize(_FOUR_PLACES):
        checks.fail("minQuantity", "minQuantity has at most four decimals")
        return None
    return value


async def _tier_taken(session: AsyncSession, book_id: int, product_id: int,
                      min_quantity: Decimal, except_id: int | None) -> bool:
    statement = select(PRICE_BOOK_ENTRIES.c.id).where(
        PRICE_BOOK_ENTRIES.c.price_book_id == book_id,
        PRICE_BOOK_ENTRIES.c.product_id == product_id,
        PRICE_BOOK_ENTRIES.c.min_quantity == min_quantity)
    if except_id is not None:
        statement = statement.where(PRICE_BOOK_ENTRIES.c.id != except_id)
    return (await session.execute(statement)).first() is not None


async def create_price_book_entry(*, viewer: Viewer, db: Database, book_id: str,
                                  product_id: str, unit_price: Decimal,
                                  min_quantity: Decimal) -> Outcome[PriceBookEntry]:
    async def action() -> PriceBookEntry:
        _admin_only(viewer)
        async with db.transaction() as session:
            checks = Checks()
            book = await _get(session, checks, PriceBook, "priceBookId", book_id, "price book")
            product = await _get(session, checks, Product, "productId", product_id, "product")
            if not product.active:  # the entries it has stay, and keep pricing old lines
                checks.fail("productId", f"product {product.code} is deactivated: it cannot "
                            "be added to price books")
            price = _unit_price(checks, unit_price)
            tier = _min_quantity(checks, min_quantity)
            if tier is not None and await _tier_taken(session, book.id, product.id, tier, None):
                checks.fail("minQuantity", f"the book has a price for {product.code} from "
                            f"{plain(tier)} units already", UserErrorCode.CONFLICT)
            checks.raise_if_any()
            entry = PriceBookEntry(price_book_id=book.id, product_id=product.id,
                                   unit_price=price, min_quantity=tier)
            session.add(entry)
            await session.flush()
        return entry

    return await mutate(action, on_duplicate=ON_DUPLICATE)


async def update_price_book_entry(*, viewer: Viewer, db: Database, entry_id: str,
                                  expected_version: int, changes: dict[str, Any]
                                  ) -> Outcome[PriceBookEntry]:
    async def action() -> PriceBookEntry:
        _admin_only(viewer)
        async with db.transaction() as session:
            checks = Checks()
            entry = await _get(session, checks, PriceBookEntry, "id", entry_id,
                               "price book entry")
            require_version(entry.version, expected_version)
            # Checks first, changes after: a check's query would flush a change made
            # before it, and one update would take two versions.
            if "min_quantity" in changes and (
                    tier := _min_quantity(checks, changes["min_quantity"])) is not None:
                if await _tier_taken(session, entry.price_book_id, entry.product_id, tier,
                                     entry.id):
                    checks.fail("minQuantity", f"the book has a price from {plain(tier)} "
                                "units already", UserErrorCode.CONFLICT)
                entry.min_quantity = tier
            if "unit_price" in changes and (
                    price := _unit_price(checks, changes["unit_price"])) is not None:
                entry.unit_price = price
            checks.raise_if_any()
            await session.flush()
        return entry

    return await mutate(action, on_duplicate=ON_DUPLICATE)


async def delete_price_book_entry(*, viewer: Viewer, db: Database, entry_id: str,
                                  expected_version: int) -> Outcome[int]:
    async def action() -> int:
        _admin_only(viewer)
        async with db.transaction() as session:
            checks = Checks()
            entry = await _get(session, checks, PriceBookEntry, "id", entry_id,
                               "price book entry")
            require_version(entry.version, expected_version)
            key = entry.id
            await session.delete(entry)
        return key

    return await mutate(action)


def _may_agree(viewer: Viewer, owner: Owner) -> bool:
    """Agreements are made by the manager of the account owner's team, or an admin."""
    if viewer.is_admin:
        return True
    return viewer.role is Role.MANAGER and (
        owner.id == viewer.user_id
        or (viewer.team_id is not None and owner.team_id == viewer.team_id))


async def _overlapping(session: AsyncSession, *, account_id: int, currency: str,
                       valid_from: date, valid_to: date | None, except_id: int | None
                       ) -> Any | None:
    """An agreement of the account in the currency whose period meets this one."""
    statement = (
        select(AGREEMENTS.c.id, AGREEMENTS.c.valid_from, AGREEMENTS.c.valid_to,
               PRICE_BOOKS.c.name)
        .join(PRICE_BOOKS, PRICE_BOOKS.c.id == AGREEMENTS.c.price_book_id)
        .where(AGREEMENTS.c.account_id == account_id, PRICE_BOOKS.c.currency == currency,
               or_(AGREEMENTS.c.valid_to.is_(None), AGREEMENTS.c.valid_to >= valid_from)))
    if valid_to is not None:
        statement = statement.where(AGREEMENTS.c.valid_from <= valid_to)
    if except_id is not None:
        statement = statement.where(AGREEMENTS.c.id != except_id)
    return (await session.execute(statement.limit(1))).first()


async def _lock_account(session: AsyncSession, account_id: int) -> Any | None:
    """The account row, held to the end of the transaction: two agreements of one
    account are checked for overlap one after the other."""
    await lock_row(session, ACCOUNTS, account_id)
    return (await session.execute(select(ACCOUNTS.c.id, ACCOUNTS.c.owner_id)
                                  .where(ACCOUNTS.c.id == account_id))).first()


async def assign_price_agreement(*, viewer: Viewer, db: Database, account_id: str,
                                 book_id: str, valid_from: date, valid_to: date | None
                                 ) -> Outcome[AccountPriceBook]:
    async def action() -> AccountPriceBook:
        if viewer.role not in (Role.ADMIN, Role.MANAGER):
            raise forbidden("price agreements are made by the account owner's manager or "
                            "an admin")
        async with db.transaction() as session:
            checks = Checks()
            account_key = checks.global_id("accountId", account_id, "Account")
            book = await _get(session, checks, PriceBook, "priceBookId", book_id,
                              "price book")
            account = await _lock_account(session, account_key) if account_key else None
            if account is None:
                raise not_found("accountId", "account")
            owner = await load_owner(session, account.owner_id)
            if owner is None or not _may_agree(viewer, owner):
                raise forbidden("price agreements are made by the account owner's manager "
                                "or an admin", "accountId")
            if not book.active:
                checks.fail("priceBookId", f"the price book {book.name} is not active")
            _period_check(checks, valid_from, valid_to)
            checks.raise_if_any()
            clash = await _overlapping(session, account_id=account.id, currency=book.currency,
                                       valid_from=valid_from, valid_to=valid_to,
                                       except_id=None)
            if clash is not None:
                raise UserInputError.one(
                    "validFrom", UserErrorCode.CONFLICT,
                    f"the account's agreement on {clash.name} ({_period(clash)}) covers part "
                    f"of this period in {book.currency}; end it first")
            agreement = AccountPriceBook(account_id=account.id, price_book_id=book.id,
                                         valid_from=valid_from, valid_to=valid_to)
            session.add(agreement)
            await session.flush()
        return agreement

    return await mutate(action)


async def end_price_agreement(*, viewer: Viewer, db: Database, agreement_id: str,
                              expected_version: int, valid_to: date
                              ) -> Outcome[AccountPriceBook]:
    """Set the last day of an agreement (earlier or later than it was)."""
    async def action() -> AccountPriceBook:
        if viewer.role not in (Role.ADMIN, Role.MANAGER):
            raise forbidden("price agreements are ended by the account owner's manager or "
                            "an admin")
        async with db.transaction() as session:
            checks = Checks()
            agreement = await _get(session, checks, AccountPriceBook, "id", agreement_id,
                                   "price agreement")
            account = await _lock_account(session, agreement.account_id)
            owner = await load_owner(session, account.owner_id) if account else None
            if owner is None or not _may_agree(viewer, owner):
                raise forbidden("price agreements are ended by the account owner's manager "
                                "or an admin")
            require_version(agreement.version, expected_version)
            if valid_to < agreement.valid_from:
                raise UserInputError.one("validTo", UserErrorCode.VALIDATION,
                                         "validTo comes before the agreement's validFrom")
            book = await session.get(PriceBook, agreement.price_book_id)
            assert book is not None
            clash = await _overlapping(session, account_id=agreement.account_id,
                                       currency=book.currency,
                                       valid_from=agreement.valid_from, valid_to=valid_to,
                                       except_id=agreement.id)
            if clash is not None:
                raise UserInputError.one(
                    "validTo", UserErrorCode.CONFLICT,
                    f"the account's agreement on {clash.name} ({_period(clash)}) starts "
                    "before that day")
            agreement.valid_to = valid_to
            await session.flush()
        return agreement

    return await mutate(action)


T = TypeVar("T")


# The API's names of the models whose names differ.
_ID_TYPES = {"AccountPriceBook": "PriceAgreement"}


async def _get(session: AsyncSession, checks: Checks, model: type[T], field_name: str,
               gid: str, what: str) -> T:
    """The record a global id names, or NOT_FOUND (other field errors are raised too)."""
    name = model.__name__  # type: ignore[attr-defined]
    key = checks.global_id(field_name, gid, _ID_TYPES.get(name, name))
    found = await session.get(model, key) if key is not None else None
    if found is None:
        if key is not None:
            checks.fail(field_name, f"{what} not found", UserErrorCode.NOT_FOUND)
        checks.raise_if_any()
    return found  # type: ignore[return-value]


async def list_price_books(*, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any
                           ) -> Listing:
    return await list_rows(
        loaders=loaders, statement=price_books_statement(loaders.viewer),
        spec=PRICE_BOOK_FILTER, filter=filter, orderable=PRICE_BOOK_ORDER,
        default_order=("NAME",), order_by=order_by, args=args,
    )


class PriceLoader(Loader):
    """Account.priceFor across every account of a request: one resolution (four
    statements) for all keys (account, product, quantity, date, currency)."""

    async def batch_load_fn(self, keys: list[tuple[int, int, Decimal, date, str | None]]
                            ) -> list[ResolvedPrice | PriceError]:
        async with self.db.read() as connection:
            return await resolve_prices(connection, [PriceRequest(*key) for key in keys])


class StandardBookLoader(Loader):
    """The standard price book of each currency (None when it has none)."""

    async def batch_load_fn(self, keys: list[str]) -> list[Any | None]:
        statement = select(PRICE_BOOKS).where(PRICE_BOOKS.c.currency.in_(keys),
                                              PRICE_BOOKS.c.is_standard.is_(True))
        async with self.db.read() as connection:
            by_currency = {row.currency: row for row in await connection.execute(statement)}
        return [by_currency.get(key) for key in keys]


async def effective_price_book(*, loaders: Loaders, account_id: int, on: date,
                               currency: str | None) -> Any | None:
    """The book an account's prices come from on a date: its agreement valid then (in
    ``currency`` when given), else the standard book of the currency (EUR by default)."""
    if currency is not None:
        _currency_code(currency)  # the standard book's lookup binds it
    agreements = [a for a in await loaders.get(AgreementsByAccountLoader).load(account_id)
                  if _valid_on(a, on)]
    books = await loaders.get(PriceBookByIdLoader).load_many(
        [a.price_book_id for a in agreements])
    for book in books:
        if book is not None and book.active and _valid_on(book, on) and currency in (
                None, book.currency):
            return book
    book = await loaders.get(StandardBookLoader).load(currency or "EUR")
    return book if book is not None and book.active and _valid_on(book, on) else None
