"""Root connections: filter, order, one keyset page, and a count only when asked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select

from loaders.container import Loaders
from loaders.query import (
    FilterSpec,
    Page,
    PageArgs,
    Sortable,
    compile_filter,
    count,
    fetch_page,
    only_columns,
    sort_keys,
    window,
)
from models.db import Database


@dataclass
class Listing:
    page: Page
    filtered: Select[Any]
    db: Database

    async def total_count(self) -> int:
        return await count(self.db, self.filtered)


async def list_rows(
    *,
    loaders: Loaders,
    statement: Select[Any],
    spec: FilterSpec,
    filter: Any,
    orderable: dict[str, Sortable],
    default_order: tuple[str, ...],
    order_by: Any,
    args: PageArgs,
    columns: tuple[str, ...] | None = None,
) -> Listing:
    """A page of ``statement``'s rows; of their ``columns`` only, when the caller knows
    which its nodes read (schema/relay.py ``planned_columns``)."""
    id_column = statement.selected_columns["id"]
    keys = sort_keys(orderable, order_by, default_order, id_column)
    # Arguments are checked before any SQL runs.
    win = window(args, keys, default_size=loaders.default_page_size,
                 max_size=loaders.max_page_size)
    filtered = statement.where(compile_filter(spec, filter, loaders.viewer))
    page = await fetch_page(loaders.db, only_columns(filtered, columns, ("id",), keys), win)
    return Listing(page, filtered, loaders.db)
