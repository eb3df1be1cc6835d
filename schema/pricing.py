"""The catalogue: offering areas and products."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry import UNSET, Private

from loaders.ids import encode_id
from loaders.pricing import OfferingAreaByIdLoader
from loaders.query import PageArgs
from resolvers import pricing as resolve
from schema.context import Info, viewer_of
from schema.filters import BooleanFilter, DecimalFilter, IDFilter, OrderDirection, StringFilter
from schema.relay import Connection, Node, connection


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

    @strawberry.field(description="Every offering area, by code.")
    async def offering_areas(self, info: Info) -> list[OfferingArea]:
        viewer_of(info)
        rows = await resolve.list_offering_areas(loaders=info.context.loaders)
        return [OfferingArea.from_row(row) for row in rows]
