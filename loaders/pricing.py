"""The catalogue (offering areas, products) and pricing (price books, entries, customer
agreements): read policy, filters, ordering and loaders."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, false, select, true

from loaders.base import ChildCountLoader, ChildPageLoader, Loader, RowByIdLoader
from loaders.query import FilterSpec, Related, Scalar, Sortable
from models.pricing import AccountPriceBook, OfferingArea, PriceBook, PriceBookEntry, Product
from models.users import Role, Viewer

OFFERING_AREAS = OfferingArea.__table__
PRODUCTS = Product.__table__
PRICE_BOOKS = PriceBook.__table__
PRICE_BOOK_ENTRIES = PriceBookEntry.__table__
AGREEMENTS = AccountPriceBook.__table__


def visible_catalogue(_viewer: Viewer) -> ColumnElement[bool]:
    """The catalogue is readable by every signed-in viewer, partners included."""
    return true()


OFFERING_AREA_FILTER = FilterSpec(
    fields={
        "id": Scalar(OFFERING_AREAS.c.id, id_type="OfferingArea"),
        "code": Scalar(OFFERING_AREAS.c.code),
        "name": Scalar(OFFERING_AREAS.c.name),
        "active": Scalar(OFFERING_AREAS.c.active),
    },
    visibility=visible_catalogue,
)

PRODUCT_FILTER = FilterSpec(
    fields={
        "id": Scalar(PRODUCTS.c.id, id_type="Product"),
        "code": Scalar(PRODUCTS.c.code),
        "name": Scalar(PRODUCTS.c.name),
        "unit": Scalar(PRODUCTS.c.unit),
        "list_price": Scalar(PRODUCTS.c.list_price),
        "currency": Scalar(PRODUCTS.c.currency),
        "active": Scalar(PRODUCTS.c.active),
        "offering_area_id": Scalar(PRODUCTS.c.offering_area_id, id_type="OfferingArea"),
        "offering_area": Related(
            lambda: OFFERING_AREA_FILTER,
            lambda: OFFERING_AREAS.c.id == PRODUCTS.c.offering_area_id,
            False,
        ),
    },
    visibility=visible_catalogue,
)

PRODUCT_ORDER = {
    "CODE": Sortable(PRODUCTS.c.code),
    "NAME": Sortable(PRODUCTS.c.name),
    "LIST_PRICE": Sortable(PRODUCTS.c.list_price),
    "CREATED_AT": Sortable(PRODUCTS.c.created_at),
}


def products_statement(viewer: Viewer) -> Select[Any]:
    return select(PRODUCTS).where(visible_catalogue(viewer))


def offering_areas_statement(viewer: Viewer) -> Select[Any]:
    return select(OFFERING_AREAS).where(visible_catalogue(viewer))


class ProductByIdLoader(RowByIdLoader):
    table = PRODUCTS
    visibility = staticmethod(visible_catalogue)


class OfferingAreaByIdLoader(RowByIdLoader):
    table = OFFERING_AREAS
    visibility = staticmethod(visible_catalogue)


# --- pricing ------------------------------------------------------------------------------


def visible_prices(viewer: Viewer) -> ColumnElement[bool]:
    """Price books, entries and agreements: every staff member reads them (quoting needs
    them); partners none."""
    return false() if viewer.role is Role.PARTNER else true()


PRICE_BOOK_FILTER = FilterSpec(
    fields={
        "id": Scalar(PRICE_BOOKS.c.id, id_type="PriceBook"),
        "name": Scalar(PRICE_BOOKS.c.name),
        "currency": Scalar(PRICE_BOOKS.c.currency),
        "is_standard": Scalar(PRICE_BOOKS.c.is_standard),
        "active": Scalar(PRICE_BOOKS.c.active),
        "valid_from": Scalar(PRICE_BOOKS.c.valid_from),
        "valid_to": Scalar(PRICE_BOOKS.c.valid_to),
    },
    visibility=visible_prices,
)

PRICE_BOOK_ORDER = {
    "NAME": Sortable(PRICE_BOOKS.c.name),
    "CURRENCY": Sortable(PRICE_BOOKS.c.currency),
    "VALID_FROM": Sortable(PRICE_BOOKS.c.valid_from, nullable=True),
    "CREATED_AT": Sortable(PRICE_BOOKS.c.created_at),
}

PRICE_BOOK_ENTRY_FILTER = FilterSpec(
    fields={
        "id": Scalar(PRICE_BOOK_ENTRIES.c.id, id_type="PriceBookEntry"),
        "product_id": Scalar(PRICE_BOOK_ENTRIES.c.product_id, id_type="Product"),
        "unit_price": Scalar(PRICE_BOOK_ENTRIES.c.unit_price),
        "min_quantity": Scalar(PRICE_BOOK_ENTRIES.c.min_quantity),
        "product": Related(lambda: PRODUCT_FILTER,
                           lambda: PRODUCTS.c.id == PRICE_BOOK_ENTRIES.c.product_id, False),
    },
    visibility=visible_prices,
)

PRICE_BOOK_ENTRY_ORDER = {
    # By product, then tier: a book reads as a price list.
    "PRODUCT": Sortable(PRICE_BOOK_ENTRIES.c.product_id),
    "MIN_QUANTITY": Sortable(PRICE_BOOK_ENTRIES.c.min_quantity),
    "UNIT_PRICE": Sortable(PRICE_BOOK_ENTRIES.c.unit_price),
    "CREATED_AT": Sortable(PRICE_BOOK_ENTRIES.c.created_at),
}


def price_books_statement(viewer: Viewer) -> Select[Any]:
    return select(PRICE_BOOKS).where(visible_prices(viewer))


def price_book_entries_statement(viewer: Viewer) -> Select[Any]:
    return select(PRICE_BOOK_ENTRIES).where(visible_prices(viewer))


class PriceBookByIdLoader(RowByIdLoader):
    table = PRICE_BOOKS
    visibility = staticmethod(visible_prices)


class PriceBookEntryByIdLoader(RowByIdLoader):
    table = PRICE_BOOK_ENTRIES
    visibility = staticmethod(visible_prices)


class PriceAgreementByIdLoader(RowByIdLoader):
    table = AGREEMENTS
    visibility = staticmethod(visible_prices)


class EntriesByPriceBookLoader(ChildPageLoader):
    parent_column = PRICE_BOOK_ENTRIES.c.price_book_id
    filter_spec = PRICE_BOOK_ENTRY_FILTER
    orderable = PRICE_BOOK_ENTRY_ORDER
    default_order = ("PRODUCT", "MIN_QUANTITY")

    def base_statement(self) -> Select[Any]:
        return price_book_entries_statement(self.viewer)


class EntryCountByPriceBookLoader(ChildCountLoader):
    parent_column = PRICE_BOOK_ENTRIES.c.price_book_id
    filter_spec = PRICE_BOOK_ENTRY_FILTER

    def base_statement(self) -> Select[Any]:
        return price_book_entries_statement(self.viewer)


class AgreementsByAccountLoader(Loader):
    """Each account's price agreements, newest first."""

    async def batch_load_fn(self, keys: list[int]) -> list[list[Any]]:
        statement = (select(AGREEMENTS)
                     .where(AGREEMENTS.c.account_id.in_(keys), visible_prices(self.viewer))
                     .order_by(AGREEMENTS.c.account_id, AGREEMENTS.c.valid_from.desc(),
                               AGREEMENTS.c.id.desc()))
        grouped: dict[int, list[Any]] = {}
        async with self.db.read() as connection:
            for row in await connection.execute(statement):
                grouped.setdefault(row.account_id, []).append(row)
        return [grouped.get(key, []) for key in keys]
