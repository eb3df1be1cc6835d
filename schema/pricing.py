"""The catalogue (offering areas, products) and pricing: price books, entries, customer
agreements and price resolution."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import strawberry
from strawberry import UNSET, Private

from loaders.accounts import AccountByIdLoader
from loaders.errors import BadUserInput
from loaders.ids import decode_id, encode_id
from loaders.pricing import (
    EntriesByPriceBookLoader,
    EntryCountByPriceBookLoader,
    OfferingAreaByIdLoader,
    PriceBookByIdLoader,
    ProductByIdLoader,
)
from loaders.query import PageArgs
from models.pricing import PriceSource as PriceSourceEnum
from resolvers import pricing as resolve
from resolvers.mutations import currency_argument
from schema import accounts as account_types  # accounts refer back to pricing
from schema.context import Info, viewer_of
from schema.errors import UserError, payload, user_errors
from schema.filters import (
    BooleanFilter,
    DateFilter,
    DecimalFilter,
    IDFilter,
    OrderDirection,
    StringFilter,
)
from schema.inputs import sent_changes
from schema.relay import Connection, Node, child_connection, connection

if TYPE_CHECKING:
    from schema.accounts import Account


@strawberry.type(description="A line of business products and plans are grouped by.")
class OfferingArea(Node):
    id: strawberry.ID
    code: str
    name: str
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> OfferingArea:
        return cls(id=encode_id("OfferingArea", row.id), code=row.code, name=row.name,
                   active=row.active, version=row.version, created_at=row.created_at,
                   updated_at=row.updated_at)


@strawberry.type(description="Something the organisation sells.")
class Product(Node):
    id: strawberry.ID
    code: str
    name: str
    description: str | None
    unit: str = strawberry.field(description="What one quantity is: license, hour, piece ...")
    list_price: Decimal = strawberry.field(description="Price of one unit before any price "
                                           "book, in `currency`.")
    currency: str = strawberry.field(description="ISO 4217 code.")
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    _offering_area_id: Private[int]

    @classmethod
    def from_row(cls, row: Any) -> Product:
        return cls(
            id=encode_id("Product", row.id), code=row.code, name=row.name,
            description=row.description, unit=row.unit, list_price=row.list_price,
            currency=row.currency, active=row.active, version=row.version,
            created_at=row.created_at, updated_at=row.updated_at,
            _offering_area_id=row.offering_area_id,
        )

    @strawberry.field
    async def offering_area(self, info: Info) -> OfferingArea:
        loader = info.context.loaders.get(OfferingAreaByIdLoader)
        return OfferingArea.from_row(await loader.load(self._offering_area_id))


@strawberry.input(description="Conditions on offering areas.")
class OfferingAreaFilter:
    id: IDFilter | None = UNSET
    code: StringFilter | None = UNSET
    name: StringFilter | None = UNSET
    active: BooleanFilter | None = UNSET
    and_: list[OfferingAreaFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[OfferingAreaFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: OfferingAreaFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.input(description="Conditions on products; combine with and, or, not.")
class ProductFilter:
    id: IDFilter | None = UNSET
    code: StringFilter | None = UNSET
    name: StringFilter | None = UNSET
    unit: StringFilter | None = UNSET
    list_price: DecimalFilter | None = UNSET
    currency: StringFilter | None = UNSET
    active: BooleanFilter | None = UNSET
    offering_area_id: IDFilter | None = UNSET
    offering_area: OfferingAreaFilter | None = UNSET
    and_: list[ProductFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[ProductFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: ProductFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.enum(description="What products can be ordered by.")
class ProductOrderField(Enum):
    CODE = "CODE"
    NAME = "NAME"
    LIST_PRICE = "LIST_PRICE"
    CREATED_AT = "CREATED_AT"
    ID = "ID"


@strawberry.input(description="One ordering key for products.")
class ProductOrder:
    field: ProductOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.type
class PricingQueries:
    @strawberry.field(description="Products in the catalogue, filtered and ordered.")
    async def products(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: ProductFilter | None = None, order_by: list[ProductOrder] | None = None,
    ) -> Connection[Product]:
        viewer_of(info)
        listing = await resolve.list_products(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by,
        )
        return connection(listing.page, Product.from_row, listing.total_count)

    @strawberry.field(description="The offering areas in use, by code; with "
                      "`includeInactive`, the deactivated ones too.")
    async def offering_areas(self, info: Info, include_inactive: bool = False
                             ) -> list[OfferingArea]:
        viewer_of(info)
        rows = await resolve.list_offering_areas(loaders=info.context.loaders,
                                                 include_inactive=include_inactive)
        return [OfferingArea.from_row(row) for row in rows]


# --- pricing ------------------------------------------------------------------------------

PriceSource = strawberry.enum(
    PriceSourceEnum, name="PriceSource",
    description="Where a unit price came from: the account's agreed price book, the "
    "standard book of the currency, the product's list price, or typed by hand.")


@strawberry.type(description="A price list in one currency; the standard one of a currency "
                 "prices every account without an agreement.")
class PriceBook(Node):
    id: strawberry.ID
    version: int
    name: str
    currency: str
    valid_from: date | None
    valid_to: date | None
    is_standard: bool
    active: bool
    created_at: datetime
    updated_at: datetime
    _key: Private[int]

    @classmethod
    def from_row(cls, row: Any) -> PriceBook:
        return cls(id=encode_id("PriceBook", row.id), version=row.version, name=row.name,
                   currency=row.currency, valid_from=row.valid_from, valid_to=row.valid_to,
                   is_standard=row.is_standard, active=row.active, created_at=row.created_at,
                   updated_at=row.updated_at, _key=row.id)

    @strawberry.field(description="The book's prices, by product and tier.")
    async def entries(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: PriceBookEntryFilter | None = None,
        order_by: list[PriceBookEntryOrder] | None = None,
    ) -> Connection[PriceBookEntry]:
        return await child_connection(
            info.context.loaders, self._key, pages=EntriesByPriceBookLoader,
            counts=EntryCountByPriceBookLoader, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by, convert=PriceBookEntry.from_row)


async def _book(info: Info, key: int | None) -> PriceBook | None:
    if key is None:
        return None
    row = await info.context.loaders.get(PriceBookByIdLoader).load(key)
    return PriceBook.from_row(row) if row else None


@strawberry.type(description="A product's unit price in a book from a minimum quantity on.")
class PriceBookEntry(Node):
    id: strawberry.ID
    version: int
    unit_price: Decimal
    min_quantity: Decimal = strawberry.field(
        description="The tier: the price holds from this quantity up.")
    _book_id: Private[int]
    _product_id: Private[int]

    @classmethod
    def from_row(cls, row: Any) -> PriceBookEntry:
        return cls(id=encode_id("PriceBookEntry", row.id), version=row.version,
                   unit_price=row.unit_price, min_quantity=row.min_quantity,
                   _book_id=row.price_book_id, _product_id=row.product_id)

    @strawberry.field
    async def price_book(self, info: Info) -> PriceBook:
        return await _book(info, self._book_id)  # type: ignore[return-value]

    @strawberry.field
    async def product(self, info: Info) -> Product:
        return Product.from_row(
            await info.context.loaders.get(ProductByIdLoader).load(self._product_id))


@strawberry.type(description="A customer price agreement: the account buys from the book in "
                 "the period.")
class PriceAgreement(Node):
    id: strawberry.ID
    version: int
    valid_from: date
    valid_to: date | None = strawberry.field(description="Null: until further notice.")
    _book_id: Private[int]
    _account_id: Private[int]

    @classmethod
    def from_row(cls, row: Any) -> PriceAgreement:
        return cls(id=encode_id("PriceAgreement", row.id), version=row.version,
                   valid_from=row.valid_from, valid_to=row.valid_to,
                   _book_id=row.price_book_id, _account_id=row.account_id)

    @strawberry.field
    async def price_book(self, info: Info) -> PriceBook:
        return await _book(info, self._book_id)  # type: ignore[return-value]

    @strawberry.field
    async def account(self, info: Info
                      ) -> Annotated[Account, strawberry.lazy("schema.accounts")] | None:
        row = await info.context.loaders.get(AccountByIdLoader).load(self._account_id)
        return account_types.Account.from_row(row) if row else None


@strawberry.type(description="The price of a product for an account, with where it came "
                 "from and why.")
class ResolvedPrice:
    unit_price: Decimal
    currency: str
    source: PriceSource  # type: ignore[valid-type]
    explanation: str
    _book_id: Private[int | None]
    _entry: Private[Any]

    @classmethod
    def from_price(cls, price: resolve.ResolvedPrice) -> ResolvedPrice:
        return cls(unit_price=price.unit_price, currency=price.currency, source=price.source,
                   explanation=price.explanation,
                   _book_id=price.price_book.id if price.price_book is not None else None,
                   _entry=price.entry)

    @strawberry.field(description="Null for a list price.")
    async def price_book(self, info: Info) -> PriceBook | None:
        return await _book(info, self._book_id)

    @strawberry.field(description="The entry (tier) the price is; null for a list price.")
    def entry(self) -> PriceBookEntry | None:
        return PriceBookEntry.from_row(self._entry) if self._entry is not None else None


@strawberry.input(description="Conditions on price books.")
class PriceBookFilter:
    id: IDFilter | None = UNSET
    name: StringFilter | None = UNSET
    currency: StringFilter | None = UNSET
    is_standard: BooleanFilter | None = UNSET
    active: BooleanFilter | None = UNSET
    valid_from: DateFilter | None = UNSET
    valid_to: DateFilter | None = UNSET
    and_: list[PriceBookFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[PriceBookFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: PriceBookFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.enum(description="What price books can be ordered by.")
class PriceBookOrderField(Enum):
    NAME = "NAME"
    CURRENCY = "CURRENCY"
    VALID_FROM = "VALID_FROM"
    CREATED_AT = "CREATED_AT"
    ID = "ID"


@strawberry.input
class PriceBookOrder:
    field: PriceBookOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="Conditions on price book entries.")
class PriceBookEntryFilter:
    id: IDFilter | None = UNSET
    product_id: IDFilter | None = UNSET
    unit_price: DecimalFilter | None = UNSET
    min_quantity: DecimalFilter | None = UNSET
    product: ProductFilter | None = UNSET
    and_: list[PriceBookEntryFilter] | None = strawberry.field(name="and", default=UNSET)
    or_: list[PriceBookEntryFilter] | None = strawberry.field(name="or", default=UNSET)
    not_: PriceBookEntryFilter | None = strawberry.field(name="not", default=UNSET)


@strawberry.enum(description="What price book entries can be ordered by.")
class PriceBookEntryOrderField(Enum):
    PRODUCT = "PRODUCT"
    MIN_QUANTITY = "MIN_QUANTITY"
    UNIT_PRICE = "UNIT_PRICE"
    CREATED_AT = "CREATED_AT"
    ID = "ID"


@strawberry.input
class PriceBookEntryOrder:
    field: PriceBookEntryOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="One product to price.")
class PriceItemInput:
    product_id: strawberry.ID
    quantity: Decimal = Decimal(1)


def _today(info: Info) -> date:
    return datetime.now(ZoneInfo(info.context.org_timezone)).date()


@strawberry.type
class PriceQueries:
    @strawberry.field(description="Price books (none for partners), filtered and ordered.")
    async def price_books(
        self, info: Info, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
        filter: PriceBookFilter | None = None, order_by: list[PriceBookOrder] | None = None,
    ) -> Connection[PriceBook]:
        viewer_of(info)
        listing = await resolve.list_price_books(
            loaders=info.context.loaders, args=PageArgs(first, after, last, before),
            filter=filter, order_by=order_by)
        return connection(listing.page, PriceBook.from_row, listing.total_count)

    @strawberry.field(description="A product's price for an account: the agreement valid on "
                      "the date (today by default) at the best tier for the quantity; else "
                      "the standard book of the currency; else the list price. Currency: the "
                      "agreement's, else the product's, unless given.")
    async def resolve_price(
        self, info: Info, account_id: strawberry.ID, product_id: strawberry.ID,
        quantity: Decimal = Decimal(1), date: date | None = None, currency: str | None = None,
    ) -> ResolvedPrice:
        viewer_of(info)
        [price] = await resolve.price_items(
            loaders=info.context.loaders, account_id=decode_id(account_id, "Account"),
            items=[(decode_id(product_id, "Product"), quantity)], on=date or _today(info),
            currency=currency)
        return ResolvedPrice.from_price(price)

    @strawberry.field(description="resolvePrice for many products at once (up to 1,000), in "
                      "a constant number of statements; in the order given.")
    async def resolve_prices(
        self, info: Info, account_id: strawberry.ID, items: list[PriceItemInput],
        date: date | None = None, currency: str | None = None,
    ) -> list[ResolvedPrice]:
        viewer_of(info)
        prices = await resolve.price_items(
            loaders=info.context.loaders, account_id=decode_id(account_id, "Account"),
            items=[(decode_id(item.product_id, "Product"), item.quantity) for item in items],
            on=date or _today(info), currency=currency)
        return [ResolvedPrice.from_price(price) for price in prices]


# --- pricing mutations --------------------------------------------------------------------


@strawberry.input
class CreatePriceBookInput:
    name: str
    currency: str
    valid_from: date | None = None
    valid_to: date | None = None
    is_standard: bool = False


@strawberry.input(description="Only the fields sent are changed; the currency never changes.")
class UpdatePriceBookInput:
    id: strawberry.ID
    expected_version: int
    name: str | None = UNSET
    valid_from: date | None = UNSET
    valid_to: date | None = UNSET
    is_standard: bool | None = UNSET
    active: bool | None = UNSET


@strawberry.input
class DeleteInput:
    id: strawberry.ID
    expected_version: int


@strawberry.input
class CreatePriceBookEntryInput:
    price_book_id: strawberry.ID
    product_id: strawberry.ID
    unit_price: Decimal
    min_quantity: Decimal = strawberry.field(default=Decimal(1),
                                             description="The tier's first quantity.")


@strawberry.input
class UpdatePriceBookEntryInput:
    id: strawberry.ID
    expected_version: int
    unit_price: Decimal | None = UNSET
    min_quantity: Decimal | None = UNSET


@strawberry.input(description="The account buys from the book from validFrom (to validTo).")
class AssignPriceAgreementInput:
    account_id: strawberry.ID
    price_book_id: strawberry.ID
    valid_from: date
    valid_to: date | None = None


@strawberry.input(description="The agreement's last day.")
class EndPriceAgreementInput:
    id: strawberry.ID
    expected_version: int
    valid_to: date


@strawberry.type
class PriceBookPayload:
    price_book: PriceBook | None
    user_errors: list[UserError]


@strawberry.type
class PriceBookEntryPayload:
    price_book_entry: PriceBookEntry | None
    user_errors: list[UserError]


@strawberry.type
class PriceAgreementPayload:
    price_agreement: PriceAgreement | None
    user_errors: list[UserError]


@strawberry.type
class DeletePayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]


def _deleted(gid: str, outcome: Any) -> DeletePayload:
    return DeletePayload(deleted_id=gid if outcome.value is not None else None,
                         user_errors=user_errors(outcome.errors))


@strawberry.type
class PriceMutations:
    @strawberry.mutation(description="Admins: a new price book.")
    async def create_price_book(self, info: Info, input: CreatePriceBookInput
                                ) -> PriceBookPayload:
        return payload(PriceBookPayload, "price_book", PriceBook.from_row,
                       await resolve.create_price_book(
                           viewer=viewer_of(info), db=info.context.db, name=input.name,
                           currency=input.currency, valid_from=input.valid_from,
                           valid_to=input.valid_to, is_standard=input.is_standard))

    @strawberry.mutation(description="Admins: rename, re-date, (un)make standard, retire.")
    async def update_price_book(self, info: Info, input: UpdatePriceBookInput
                                ) -> PriceBookPayload:
        return payload(PriceBookPayload, "price_book", PriceBook.from_row,
                       await resolve.update_price_book(
                           viewer=viewer_of(info), db=info.context.db, book_id=input.id,
                           expected_version=input.expected_version,
                           changes=sent_changes(input)))

    @strawberry.mutation(description="Admins: delete a book nothing refers to.")
    async def delete_price_book(self, info: Info, input: DeleteInput) -> DeletePayload:
        return _deleted(input.id, await resolve.delete_price_book(
            viewer=viewer_of(info), db=info.context.db, book_id=input.id,
            expected_version=input.expected_version))

    @strawberry.mutation(description="Admins: a price (tier) in a book.")
    async def create_price_book_entry(self, info: Info, input: CreatePriceBookEntryInput
                                      ) -> PriceBookEntryPayload:
        return payload(PriceBookEntryPayload, "price_book_entry", PriceBookEntry.from_row,
                        await resolve.create_price_book_entry(
                            viewer=viewer_of(info), db=info.context.db,
                            book_id=input.price_book_id, product_id=input.product_id,
                            unit_price=input.unit_price, min_quantity=input.min_quantity))

    @strawberry.mutation
    async def update_price_book_entry(self, info: Info, input: UpdatePriceBookEntryInput
                                      ) -> PriceBookEntryPayload:
        return payload(PriceBookEntryPayload, "price_book_entry", PriceBookEntry.from_row,
                        await resolve.update_price_book_entry(
                            viewer=viewer_of(info), db=info.context.db, entry_id=input.id,
                            expected_version=input.expected_version,
                            changes=sent_changes(input)))

    @strawberry.mutation
    async def delete_price_book_entry(self, info: Info, input: DeleteInput) -> DeletePayload:
        return _deleted(input.id, await resolve.delete_price_book_entry(
            viewer=viewer_of(info), db=info.context.db, entry_id=input.id,
            expected_version=input.expected_version))

    @strawberry.mutation(description="The account owner's manager or an admin: a customer "
                         "price agreement; it may not overlap another in the same currency.")
    async def assign_price_agreement(self, info: Info, input: AssignPriceAgreementInput
                                     ) -> PriceAgreementPayload:
        return payload(PriceAgreementPayload, "price_agreement", PriceAgreement.from_row,
                        await resolve.assign_price_agreement(
                            viewer=viewer_of(info), db=info.context.db,
                            account_id=input.account_id, book_id=input.price_book_id,
                            valid_from=input.valid_from, valid_to=input.valid_to))

    @strawberry.mutation(description="Set an agreement's last day.")
    async def end_price_agreement(self, info: Info, input: EndPriceAgreementInput
                                  ) -> PriceAgreementPayload:
        return payload(PriceAgreementPayload, "price_agreement", PriceAgreement.from_row,
                        await resolve.end_price_agreement(
                            viewer=viewer_of(info), db=info.context.db, agreement_id=input.id,
                            expected_version=input.expected_version, valid_to=input.valid_to))


async def effective_price_book_field(info: Info, account_id: int, on: date | None,
                                     currency: str | None) -> PriceBook | None:
    """Account.effectivePriceBook."""
    if info.context.loaders.viewer.is_partner:
        return None
    row = await resolve.effective_price_book(loaders=info.context.loaders,
                                             account_id=account_id, on=on or _today(info),
                                             currency=currency)
    return PriceBook.from_row(row) if row else None


async def price_for_field(info: Info, account_id: int, product_gid: strawberry.ID,
                          quantity: Decimal, on: date | None, currency: str | None
                          ) -> ResolvedPrice | None:
    """Account.priceFor: batched over every account of the request."""
    if info.context.loaders.viewer.is_partner:
        return None
    if currency is not None:
        currency_argument(currency)  # the batch's SQL binds it
    price = await info.context.loaders.get(resolve.PriceLoader).load(
        (account_id, decode_id(product_gid, "Product"), quantity, on or _today(info),
         currency))
    if isinstance(price, resolve.PriceError):
        raise BadUserInput(f"productId: {price}")
    return ResolvedPrice.from_price(price)
