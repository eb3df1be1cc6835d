"""The catalogue: offering areas and products."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, select, true

from loaders.base import RowByIdLoader
from loaders.query import FilterSpec, Related, Scalar, Sortable
from models.pricing import OfferingArea, Product
from models.users import Viewer

OFFERING_AREAS = OfferingArea.__table__
PRODUCTS = Product.__table__


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
