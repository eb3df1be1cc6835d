"""The one filter compiler, ordering and keyset pagination, for every connection.

Filters arrive as GraphQL input objects (read by attribute: ``eq``, ``in_``,
``and_`` ...) and become SQLAlchemy expressions; no SQL is built from strings.
Pages are keyset pages on (order keys..., id): never OFFSET.
"""

from __future__ import annotations

import base64
import binascii
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    and_,
    any_,
    bindparam,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Row

from loaders.errors import BadUserInput
from loaders.ids import decode_id
from models.db import Database
from models.users import Viewer

MAX_FILTER_DEPTH = 8
MAX_FILTER_CONDITIONS = 200
MAX_IN_VALUES = 1_000


def _is_set(value: Any) -> bool:
    # Strawberry's UNSET is falsy and not None; an explicit null means "no condition".
    return value is not None and type(value).__name__ != "UnsetType"


# --- filters -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scalar:
    """A column compared by an operator input (StringFilter, DecimalFilter ...)."""

    column: ColumnElement[Any]
    id_type: str | None = None  # IDFilter values are global ids of this type


@dataclass(frozen=True)
class Related:
    """A filter on related records: ``to_many`` takes { some none every }."""

    spec: Callable[[], FilterSpec]
    join: Callable[[], ColumnElement[bool]]
    to_many: bool


@dataclass(frozen=True)
class FilterSpec:
    fields: dict[str, Scalar | Related]
    # Related records are filtered through their own read policy, so a filter can
    # never reveal what the viewer could not read.
    visibility: Callable[[Viewer], ColumnElement[bool]] = field(default=lambda _viewer: true())


class _Budget:
    def __init__(self) -> None:
        self.conditions = 0

    def spend(self, depth: int) -> None:
        self.conditions += 1
        if depth > MAX_FILTER_DEPTH:
            raise BadUserInput(f"filter is nested deeper than {MAX_FILTER_DEPTH} levels")
        if self.conditions > MAX_FILTER_CONDITIONS:
            raise BadUserInput(f"filter has more than {MAX_FILTER_CONDITIONS} conditions")


def compile_filter(spec: FilterSpec, value: Any, viewer: Viewer) -> ColumnElement[bool]:
    if not _is_set(value):
        return true()
    return _compile(spec, value, viewer, _Budget(), 1)


def _compile(
    spec: FilterSpec, value: Any, viewer: Viewer, budget: _Budget, depth: int
) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    for name, item in vars(value).items():
        if not _is_set(item):
            continue
        budget.spend(depth)
        if name == "and_":
            clauses.extend(_compile(spec, sub, viewer, budget, depth + 1) for sub in item)
        elif name == "or_":
            parts = [_compile(spec, sub, viewer, budget, depth + 1) for sub in item]
            clauses.append(or_(*parts) if parts else false())
        elif name == "not_":
            clauses.append(not_(_compile(spec, item, viewer, budget, depth + 1)))
        else:
            target = spec.fields[name]
            if isinstance(target, Scalar):
                clauses.extend(_operators(target, item))
            else:
                clauses.append(_related(target, item, viewer, budget, depth + 1))
    return and_(true(), *clauses) if clauses else true()


def _related(
    target: Related, value: Any, viewer: Viewer, budget: _Budget, depth: int
) -> ColumnElement[bool]:
    spec = target.spec()

    def matching(inner: Any, negate: bool = False) -> ColumnElement[bool]:
        condition = _compile(spec, inner, viewer, budget, depth + 1)
        if negate:
            condition = not_(condition)
        return exists().where(target.join(), spec.visibility(viewer), condition)

    if not target.to_many:
        return matching(value)
    clauses = []
    if _is_set(getattr(value, "some", None)):
        clauses.append(matching(value.some))
    if _is_set(getattr(value, "none", None)):
        clauses.append(not_(matching(value.none)))
    if _is_set(getattr(value, "every", None)):
        clauses.append(not_(matching(value.every, negate=True)))
    return and_(true(), *clauses)


def _plain(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise BadUserInput("text cannot contain NUL characters")
    return value


def _operators(target: Scalar, ops: Any) -> list[ColumnElement[bool]]:
    column = target.column
    convert: Callable[[Any], Any] = _plain
    if target.id_type is not None:
        id_type = target.id_type

        def convert(raw: Any) -> Any:
            return decode_id(str(raw), id_type)

    clauses: list[ColumnElement[bool]] = []
    for op, raw in vars(ops).items():
        if not _is_set(raw):
            continue
        if op == "eq":
            clauses.append(column == convert(raw))
        elif op == "ne":
            clauses.append(column.is_distinct_from(convert(raw)))
        elif op in ("in_", "not_in"):
            if len(raw) > MAX_IN_VALUES:
                raise BadUserInput(f"'in' takes at most {MAX_IN_VALUES} values")
            values = [convert(v) for v in raw]
            clauses.append(column.in_(values) if op == "in_" else column.not_in(values))
        elif op == "gt":
            clauses.append(column > convert(raw))
        elif op == "gte":
            clauses.append(column >= convert(raw))
        elif op == "lt":
            clauses.append(column < convert(raw))
        elif op == "lte":
            clauses.append(column <= convert(raw))
        elif op == "contains":
            clauses.append(func.lower(column).contains(_plain(raw).lower(), autoescape=True))
        elif op == "starts_with":
            clauses.append(func.lower(column).startswith(_plain(raw).lower(), autoescape=True))
        elif op == "is_null":
            clauses.append(column.is_(None) if raw else column.is_not(None))
        else:  # pragma: no cover - an operator input field without a compiler rule
            raise AssertionError(f"no rule for filter operator {op!r}")
    return clauses


# --- ordering and cursors --------------------------------------------------------------


@dataclass(frozen=True)
class SortKey:
    name: str
    column: ColumnElement[Any]
    descending: bool = False
    nullable: bool = False

    def flipped(self) -> SortKey:
        return SortKey(self.name, self.column, not self.descending, self.nullable)

    def order_clause(self) -> ColumnElement[Any]:
        # NULLs sort as the greatest value in both directions, as PostgreSQL does.
        if self.descending:
            clause = self.column.desc()
            return clause.nulls_first() if self.nullable else clause
        clause = self.column.asc()
        return clause.nulls_last() if self.nullable else clause


@dataclass(frozen=True)
class Sortable:
    column: ColumnElement[Any]
    nullable: bool = False


def sort_keys(
    orderable: dict[str, Sortable],
    order_by: Sequence[Any] | None,
    default: Sequence[str],
    id_column: ColumnElement[Any],
) -> list[SortKey]:
    """Order inputs ({ field, direction }) to sort keys, ending with the id.

    ``orderable`` maps the order enum's values to columns; "ID" may be among them.
    """
    keys: list[SortKey] = []
    if order_by:
        if len(order_by) > 5:
            raise BadUserInput("orderBy takes at most 5 entries")
        for entry in order_by:
            name = entry.field.value
            descending = getattr(entry.direction, "value", "ASC") == "DESC"
            sortable = orderable[name] if name != "ID" else Sortable(id_column)
            keys.append(SortKey(name, sortable.column, descending, sortable.nullable))
    else:
        keys = [SortKey(name, orderable[name].column, False, orderable[name].nullable)
                for name in default]
    # The id ends every ordering (unless named already), so keys are unique and
    # the keyset position of a row is exact.
    if not any(k.name == "ID" for k in keys):
        keys.append(SortKey("ID", id_column))
    return keys


def _signature(keys: Sequence[SortKey]) -> str:
    return ",".join(f"{k.name}{'-' if k.descending else '+'}" for k in keys)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def encode_cursor(keys: Sequence[SortKey], values: Sequence[Any]) -> str:
    payload = [_signature(keys), *(_jsonable(v) for v in values)]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def _python_type(key: SortKey) -> Any:
    try:
        return key.column.type.python_type
    except NotImplementedError:  # pragma: no cover
        return object


def decode_cursor(keys: Sequence[SortKey], cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(payload, list) or payload[0] != _signature(keys):
            raise ValueError("cursor from another ordering")
        values = payload[1:]
        if len(values) != len(keys):
            raise ValueError("cursor of another shape")
        return [_from_json(_python_type(k), v) for k, v in zip(keys, values, strict=True)]
    except (ValueError, TypeError, IndexError, binascii.Error, orjson.JSONDecodeError):
        raise BadUserInput(
            f"cursor {cursor!r} is not valid here (cursors belong to one orderBy)"
        ) from None


def _from_json(python_type: Any, value: Any) -> Any:
    if value is None:
        return None
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is date:
        return date.fromisoformat(value)
    if python_type is Decimal:
        return Decimal(str(value))
    if isinstance(python_type, type) and issubclass(python_type, Enum):
        return python_type(value)
    if python_type in (int, str, bool) and not isinstance(value, python_type):
        raise ValueError("cursor value of the wrong type")
    return value


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys`` (NULLs greatest)."""
    alternatives: list[ColumnElement[bool]] = []
    equal_so_far: list[ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        column = key.column
        if value is None:
            beyond = column.is_not(None) if key.descending else false()
            same = column.is_(None)
        else:
            if key.descending:
                beyond = column < value
            else:
                beyond = or_(column > value, column.is_(None)) if key.nullable else column > value
            same = column == value
        alternatives.append(and_(*equal_so_far, beyond))
        equal_so_far.append(same)
    return or_(*alternatives)


# --- pages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageArgs:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None


@dataclass(frozen=True)
class Window:
    limit: int
    backward: bool
    after: list[Any] | None
    before: list[Any] | None
    keys: list[SortKey]

    @property
    def scan_keys(self) -> list[SortKey]:
        return [k.flipped() for k in self.keys] if self.backward else self.keys

    def bounds(self) -> list[ColumnElement[bool]]:
        clauses = []
        if self.after is not None:
            clauses.append(_after(self.keys, self.after))
        if self.before is not None:
            clauses.append(_after([k.flipped() for k in self.keys], self.before))
        return clauses


def window(
    args: PageArgs, keys: list[SortKey], *, default_size: int, max_size: int
) -> Window:
    if args.first is not None and args.last is not None:
        raise BadUserInput("pass either first or last, not both")
    size = args.last if args.last is not None else args.first
    if size is None:
        size = default_size
    if size < 0:
        raise BadUserInput("first and last cannot be negative")
    if size > max_size:
        raise BadUserInput(f"first and last can be at most {max_size}")
    return Window(
        limit=size,
        backward=args.last is not None,
        after=decode_cursor(keys, args.after) if args.after is not None else None,
        before=decode_cursor(keys, args.before) if args.before is not None else None,
        keys=keys,
    )


@dataclass
class Page:
    rows: list[Row[Any]]
    has_next: bool
    has_previous: bool
    keys: list[SortKey]

    def cursor(self, row: Row[Any]) -> str:
        return encode_cursor(self.keys, [getattr(row, k.column.key) for k in self.keys])


def _page(rows: list[Row[Any]], win: Window) -> Page:
    more = len(rows) > win.limit
    rows = rows[: win.limit]
    if win.backward:
        rows.reverse()
        return Page(rows, win.before is not None, more, win.keys)
    return Page(rows, more, win.after is not None, win.keys)


async def fetch_page(db: Database, statement: Select[Any], win: Window) -> Page:
    statement = (
        statement.where(*win.bounds())
        .order_by(*(k.order_clause() for k in win.scan_keys))
        .limit(win.limit + 1)
    )
    return _page(await _named_rows(db, statement), win)


async def fetch_child_pages(
    db: Database,
    statement: Select[Any],
    parent_column: ColumnElement[Any],
    parent_ids: Sequence[int],
    win: Window,
) -> list[Page]:
    """One page per parent in one statement: ROW_NUMBER() over each parent's rows."""
    rank = func.row_number().over(
        partition_by=parent_column, order_by=[k.order_clause() for k in win.scan_keys]
    )
    ranked = (
        statement.add_columns(rank.label("_rank"))
        .where(among(parent_column, db.dialect, "parent_ids", parent_ids), *win.bounds())
        .subquery()
    )
    columns = [column for column in ranked.c if column.key != "_rank"]
    query = select(*columns).where(ranked.c._rank <= win.limit + 1).order_by(
        ranked.c[parent_column.key], ranked.c._rank
    )
    grouped: dict[int, list[Row[Any]]] = {}
    parent = [column.key for column in columns].index(parent_column.key)
    for row in await _named_rows(db, query):
        grouped.setdefault(row[parent], []).append(row)
    # Rows fetched without their sort keys (no cursor asked for) keep the table's
    # columns as the page's keys: nothing reads them.
    keys = [SortKey(k.name, ranked.c.get(k.column.key, k.column), k.descending, k.nullable)
            for k in win.keys]
    return [
        _page(grouped.get(parent_id, []), Window(win.limit, win.backward, win.after,
                                                  win.before, keys))
        for parent_id in parent_ids
    ]


def among(column: ColumnElement[Any], dialect: str, name: str,
          ids: Sequence[int] | None = None) -> ColumnElement[bool]:
    """``column IN`` the ids bound as ``name`` (given now, or at each run when None). On
    PostgreSQL they are one array (``= ANY``): the statement's text is the same whatever
    their number, one prepared statement, nothing expanded into it per run. SQLite has
    no arrays: an IN list, expanded at each run."""
    # A value given (even None) would make the parameter optional, fixed at that value.
    given = {} if ids is None else {"value": list(ids), "unique": True}
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type), **given))
    return column.in_(bindparam(name, expanding=True, **given))


def one_of(column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values`` for values fixed when the statement is built, each bound on
    its own: a statement the driver runs (``Database.rows``) is compiled once and cannot
    expand a list into its text at each run."""
    return or_(*(column == value for value in values)) if values else false()


def none_of(column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column NOT IN values``, as ``one_of``: null where the column is null."""
    return and_(*(column != value for value in values)) if values else true()


# Among the columns a page's rows are fetched with (``only_columns``): its cursors are
# read (its page info or its edges' cursors), so its rows carry their sort keys.
CURSORS = "(cursors)"


def only_columns(statement: Select[Any], columns: tuple[str, ...] | None,
                 always: tuple[str, ...], keys: Sequence[SortKey]) -> Select[Any]:
    """``statement`` selecting only ``columns`` (None: all) and ``always`` (the keys a
    page needs), and the sort keys when CURSORS is among them. Rows without them are
    still ordered by them: the statement orders by the table's columns."""
    if columns is None:
        return statement
    wanted = {*columns, *always}
    if CURSORS in columns:
        wanted.update(key.column.key for key in keys)
    return statement.with_only_columns(
        *(column for column in statement.selected_columns if column.key in wanted),
        maintain_column_froms=True)


async def _named_rows(db: Database, statement: Select[Any]) -> list[Any]:
    """A page's rows, fetched at once (not row by row through the cursor), as named
    tuples where their columns allow."""
    page_row = _page_row(tuple(column.key for column in statement.selected_columns))
    if page_row is None:
        async with db.read() as connection:
            return list((await connection.execute(statement)).all())
    return await db.tuples(statement, page_row)


@lru_cache(maxsize=256)
def _page_row(names: tuple[str, ...]) -> type[tuple[Any, ...]] | None:
    """A row of a page as a named tuple: a page of 10,000 deals reads three or
    four fields of each, and a field of SQLAlchemy's Row costs ~0.3 us to read by
    name (its attribute look-up first asks its class), of a named tuple ~0.04 us.
    It reads like a Row: by name, by index, unpacked. None for columns a named tuple
    cannot name (a leading underscore, a keyword, a name twice): those keep the Row."""
    try:
        return namedtuple("PageRow", names)  # type: ignore[return-value]
    except ValueError:
        return None


async def count(db: Database, statement: Select[Any]) -> int:
    query = select(func.count()).select_from(statement.order_by(None).subquery())
    async with db.read() as connection:
        return int((await connection.execute(query)).scalar_one())


async def count_by_parent(
    db: Database, statement: Select[Any], parent_column: ColumnElement[Any],
    parent_ids: Sequence[int],
) -> list[int]:
    query = (
        statement.with_only_columns(parent_column, func.count())
        .where(parent_column.in_(parent_ids))
        .group_by(parent_column)
    )
    async with db.read() as connection:
        counts = {parent: total for parent, total in await connection.execute(query)}
    return [int(counts.get(parent_id, 0)) for parent_id in parent_ids]
