"""Loader building blocks: rows by id, pages of children, counts of children."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from aiodataloader import DataLoader
from sqlalchemy import ColumnElement, Select, Table, and_, select
from sqlalchemy.engine import Row
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.sql import visitors

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
        # To-one rows read in this loader's statement (``join``): the column naming
        # each, and the loader of its table that is told them.
        self.joined: list[tuple[str, RowByIdLoader]] = []

    def join(self, column: str, loader: RowByIdLoader) -> None:
        """Reads with this loader's rows, in its statement, the row of ``loader``'s
        table that each row's ``column`` names, through ``loader``'s policy, and makes
        it known to ``loader`` (None where it is missing or invisible): an account and
        its owner in one statement, not two. A query says what it will ask for before
        this loader's batch runs (server/compiled.py ``Run.plan_joins``)."""
        if not any(known == column and type(other) is type(loader)
                   for known, other in self.joined):
            self.joined.append((column, loader))

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
        joined = self.joined_statement() if self.joined else None
        if joined is not None:
            rows = joined.split(await self.db.rows(joined.read, {KEYS: keys}, values=True),
                                self.joined)
        else:
            rows = await self.db.rows(self.statement(), {KEYS: keys})
        by_id = {row.id: row for row in rows}
        return [by_id.get(key) for key in keys]

    def joined_statement(self) -> Joined | None:
        """This loader's statement with the joins asked for, or None when none of them
        can be joined without changing what a policy means (``Joined.build``)."""
        dialect = self.db.dialect
        wanted = tuple((column, type(loader)) for column, loader in self.joined)
        key = (type(self), self.viewer, dialect, wanted)
        joined = _JOINED_STATEMENTS.get(key, _UNBUILT)
        if joined is _UNBUILT:
            joined = Joined.build(type(self), self.viewer, dialect, wanted)
            if len(_JOINED_STATEMENTS) >= STATEMENT_CACHE_SIZE:
                del _JOINED_STATEMENTS[next(iter(_JOINED_STATEMENTS))]
            _JOINED_STATEMENTS[key] = joined
        return joined  # type: ignore[return-value]


class Joined:
    """A RowByIdLoader's statement with to-one rows of other tables joined, each
    through its own loader's policy: ``LEFT JOIN users ON users.id = accounts.owner_id
    AND <users policy>``, after the parent table's columns those of each joined table.

    A join is made only where no policy (the parent's, or a joined table's) refers to
    another table of the statement: in a subquery such a reference would be correlated
    with the joined table, and mean something else than in the loaders' own
    statements (a partner's users policy reads the accounts shared with it). Those are
    left to their loaders' own statements, as are loaders that read their rows
    otherwise than RowByIdLoader does.

    The joins asked for stay asked for the rest of the request: a later batch of the
    same loader (the accounts of a page of deals) reads those rows too."""

    def __init__(self, read: Read, parent: Table, parts: list[tuple[int, ...]],
                 metadata: list[SimpleResultMetaData]) -> None:
        self.read = read
        self.width = len(parent.c)  # the parent's columns come first
        self.parent = _metadata(parent)
        # Per join made: its index among those asked for; where the parent's column
        # naming its row is; where its columns start and end, and its id among them.
        self.parts = parts
        self.metadata = metadata  # per join made, what makes its rows

    @staticmethod
    def build(parent: type[RowByIdLoader], viewer: Viewer, dialect: str,
              wanted: tuple[tuple[str, type[RowByIdLoader]], ...]) -> Joined | None:
        if not _plain(parent):
            return None
        table = parent.table
        policy = parent.visibility(viewer)
        tables = {table}
        policies = [policy]
        source: Any = table
        columns: list[Any] = list(table.c)
        parts: list[tuple[int, ...]] = []
        metadata: list[SimpleResultMetaData] = []
        for index, (column, child) in enumerate(wanted):
            other = child.table
            condition = child.visibility(viewer)
            if not _plain(child) or other in tables or _tables(condition) & tables or any(
                    other in _tables(known) for known in policies):
                continue
            source = source.outerjoin(other, and_(other.c.id == table.c[column], condition))
            tables.add(other)
            policies.append(condition)
            start = len(columns)
            columns.extend(c.label(f"j{index}_{c.key}") for c in other.c)
            parts.append((index, list(table.c.keys()).index(column), start, len(columns),
                          start + list(other.c.keys()).index("id")))
            metadata.append(_metadata(other))
        if not parts:
            return None
        statement = select(*columns).select_from(source).where(
            among(table.c.id, dialect, KEYS), policy)
        return Joined(Read(statement), table, parts, metadata)

    def split(self, rows: list[Any], joined: list[tuple[str, RowByIdLoader]]) -> list[Any]:
        """The parent rows, as the loader's own statement gives them; each joined row
        made known to its loader under the key its parent's column holds, None where
        the join found none (missing, or invisible to the viewer)."""
        width, parent = self.width, self.parent
        parts = [(at, start, end, found, metadata, joined[index][1].known)
                 for (index, at, start, end, found), metadata
                 in zip(self.parts, self.metadata, strict=True)]
        parents = []
        for values in rows:
            values = tuple(values)
            parents.append(Row(parent, None, parent._key_to_index, values[:width]))
            for at, start, end, found, metadata, known in parts:
                key = values[at]
                if key is not None:
                    known[key] = None if values[found] is None else Row(
                        metadata, None, metadata._key_to_index, values[start:end])
        return parents


def _plain(loader: type[RowByIdLoader]) -> bool:
    """Does ``loader`` read its rows as RowByIdLoader does (its table, its policy)? One
    that reads them otherwise is not joined: the join would not read what it reads."""
    return loader.statement is RowByIdLoader.statement and \
        loader.batch_load_fn is RowByIdLoader.batch_load_fn


def _tables(condition: ColumnElement[Any]) -> set[Table]:
    """The tables ``condition`` refers to, in its subqueries too."""
    found: set[Table] = set()
    for element in visitors.iterate(condition):
        if isinstance(element, Table):
            found.add(element)
        elif isinstance(getattr(element, "table", None), Table):
            found.add(element.table)
    return found


def _metadata(table: Table) -> SimpleResultMetaData:
    """What makes a Row of ``table``'s values as ``select(table)`` makes them."""
    return SimpleResultMetaData([c.key for c in table.c], extra=[(c,) for c in table.c])


KEYS = "row_ids"
_BY_ID_STATEMENTS: dict[tuple[type[RowByIdLoader], Viewer, str], Read] = {}
_UNBUILT = object()
# The statements of RowByIdLoaders with joins, by loader class, viewer, database kind
# and the joins asked for; None where none can be made.
_JOINED_STATEMENTS: dict[Any, Joined | None] = {}


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
