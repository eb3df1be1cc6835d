"""Loader building blocks: rows by id, pages of children, counts of children."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from aiodataloader import DataLoader
from sqlalchemy import ColumnElement, Select, Table, select

from loaders.query import (
    FilterSpec,
    Page,
    PageArgs,
    Sortable,
    among,
    compile_filter,
    count_by_parent,
    fetch_child_pages,
    only_columns,
    sort_keys,
    window,
)
from models.db import Read
from models.users import Viewer

if TYPE_CHECKING:
    from loaders.container import Loaders

# Bounded so one IN list stays under the 32,767 bind parameters that both
# PostgreSQL and SQLite accept; only a request touching more keys than this pays
# a second statement.
MAX_BATCH = 10_000
# Statements of RowByIdLoader kept, by loader class and viewer.
STATEMENT_CACHE_SIZE = 1_000


class Loader(DataLoader):
    """A DataLoader bound to one request's Loaders (database, viewer, limits).

    Create them through ``loaders.get(LoaderClass, *args)``: one instance per request
    and arguments, so every field asking for the same thing shares one batch.
    """

    def __init__(self, loaders: Loaders) -> None:
        super().__init__(max_batch_size=MAX_BATCH)
        # Not the Loaders itself: it holds this loader, and that cycle made every
        # request's loaded rows, pages and objects garbage that only the cyclic
        # collector could free.
        self.db = loaders.db
        self.viewer: Viewer = loaders.viewer


class RowByIdLoader(Loader):
    """Rows by primary key, through the area's read policy: an invisible row is None.

    A policy depends on the viewer alone, so each loader's statement is built once per
    viewer and database kind: a request reuses it, without building the statement
    again for every batch. On PostgreSQL the keys are one array (``= ANY``), so the
    statement's text is the same whatever the number of keys (one prepared statement);
    SQLite has no arrays and gets an IN list expanded at each run.
    """

    table: ClassVar[Table]
    visibility: ClassVar[Callable[[Viewer], ColumnElement[bool]]]

    def __init__(self, loaders: Loaders) -> None:
        super().__init__(loaders)
        # Rows this request has read already through the same policy, by id: a page
        # of accounts whose nodes ask for their plans (each plan checks its account)
        # reads the page's accounts once, not again by id.
        self.known: dict[int, Any] = {}

    def know(self, rows: Iterable[Any]) -> None:
        """Keeps ``rows``, whole rows of ``table`` read through ``visibility`` for
        this loader's viewer, to answer their ids without a statement."""
        self.known.update((row.id, row) for row in rows)

    def statement(self) -> Read:
        dialect = self.db.dialect
        key = (type(self), self.viewer, dialect)
        statement = _BY_ID_STATEMENTS.get(key)
        if statement is None:
            table = self.table
            statement = Read(select(table).where(among(table.c.id, dialect, KEYS),
                                                 type(self).visibility(self.viewer)))
            if len(_BY_ID_STATEMENTS) >= STATEMENT_CACHE_SIZE:
                del _BY_ID_STATEMENTS[next(iter(_BY_ID_STATEMENTS))]
            _BY_ID_STATEMENTS[key] = statement
        return statement

    def load(self, key: int) -> Any:
        # A known row is answered at once: no batch, and no turn of the event loop for
        # its caller to wait.
        known = self.known
        if known and key in known:
            self.prime(key, known[key])
        return super().load(key)

    async def batch_load_fn(self, keys: list[int]) -> list[Any]:
        rows = await self.db.rows(self.statement(), {KEYS: keys})
        by_id = {row.id: row for row in rows}
        return [by_id.get(key) for key in keys]


KEYS = "row_ids"
_BY_ID_STATEMENTS: dict[tuple[type[RowByIdLoader], Viewer, str], Read] = {}


class ChildPageLoader(Loader):
    """One connection page per parent id, for all parents in one statement.

    ``columns``: the columns the query reads of each row, when it says (a page of
    deals' names and amounts need not fetch and decode twenty columns); the keys and
    the parent are always fetched, the sort keys when ``CURSORS`` is among them (the
    page's cursors are asked for: its page info or its edges' cursors).
    """

    parent_column: ClassVar[ColumnElement[Any]]
    filter_spec: ClassVar[FilterSpec]
    orderable: ClassVar[dict[str, Sortable]]
    default_order: ClassVar[tuple[str, ...]]

    def __init__(self, loaders: Loaders, args: PageArgs, filter: Any, order_by: Any,
                 columns: tuple[str, ...] | None = None) -> None:
        super().__init__(loaders)
        keys = sort_keys(self.orderable, order_by, self.default_order, self.id_column())
        self.window = window(args, keys, default_size=loaders.default_page_size,
                             max_size=loaders.max_page_size)
        statement = only_columns(self.base_statement(), columns,
                                 (self.id_column().key, self.parent_column.key), keys)
        self.statement = statement.where(compile_filter(self.filter_spec, filter, self.viewer))

    def id_column(self) -> ColumnElement[Any]:
        return self.parent_column.table.c.id  # type: ignore[attr-defined]

    def base_statement(self) -> Select[Any]:
        raise NotImplementedError

    async def batch_load_fn(self, keys: list[int]) -> list[Page]:
        return await fetch_child_pages(self.db, self.statement, self.parent_column, keys,
                                       self.window)


class ChildCountLoader(Loader):
    """How many children each parent has under a filter (a connection's totalCount)."""

    parent_column: ClassVar[ColumnElement[Any]]
    filter_spec: ClassVar[FilterSpec]

    def __init__(self, loaders: Loaders, filter: Any) -> None:
        super().__init__(loaders)
        self.statement = self.base_statement().where(
            compile_filter(self.filter_spec, filter, self.viewer)
        )

    def base_statement(self) -> Select[Any]:
        raise NotImplementedError

    async def batch_load_fn(self, keys: list[int]) -> list[int]:
        return await count_by_parent(self.db, self.statement, self.parent_column, keys)
