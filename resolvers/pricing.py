"""The catalogue: product and offering area lists."""

from __future__ import annotations

from typing import Any

from loaders.container import Loaders
from loaders.pricing import (
    OFFERING_AREAS,
    PRODUCT_FILTER,
    PRODUCT_ORDER,
    offering_areas_statement,
    products_statement,
)
from loaders.query import PageArgs
from resolvers.pages import Listing, list_rows


async def list_products(
    *, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any
) -> Listing:
    return await list_rows(
        loaders=loaders, statement=products_statement(loaders.viewer), spec=PRODUCT_FILTER,
        filter=filter, orderable=PRODUCT_ORDER, default_order=("CODE",), order_by=order_by,
        args=args,
    )


async def list_offering_areas(*, loaders: Loaders) -> list[Any]:
    statement = offering_areas_statement(loaders.viewer).order_by(OFFERING_AREAS.c.code)
    async with loaders.db.read() as connection:
        return list((await connection.execute(statement)).all())
