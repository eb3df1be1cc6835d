"""Types read from one database row, their fields computed when first read.

A page of 1,000 accounts with ten deals each makes 11,000 objects, and a query reads
three or four fields of each: building every field of every object up front (global
ids, weighted amounts, days in phase, a dataclass ``__init__`` of twenty arguments)
cost more than executing the query. ``RowBacked.from_row`` keeps the row instead, and
a field missing from the object is computed from the row on first read and kept.

A type lists how each field comes from the row in ``_reads`` (``reads(...)``): a column
name, or a function of the row. Objects made with the dataclass constructor (mutation
payloads, tests) have every field set and never reach ``__getattr__``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from operator import attrgetter
from typing import Any, ClassVar, Self


class Reads(dict[str, Callable[[Any], Any]]):
    """How each field is read from the row (name -> function of the row), and the
    columns each reads (``columns``; None where a function did not say): a page of
    rows for a query that selects three fields of twenty need not fetch the rest
    (server/compiled.py, schema/relay.py ``Children``). ``inline``: the fields whose
    function is a plain read of the row, as the Python expression of ``row`` it is
    (``row.name``, ``row['budget']``), which a compiled plan writes into its code
    instead of a call (server/compiled.py ``_leaves_function``)."""

    def __init__(self, getters: dict[str, Callable[[Any], Any]],
                 columns: dict[str, tuple[str, ...] | None],
                 inline: dict[str, str] | None = None) -> None:
        super().__init__(getters)
        self.columns = columns
        self.inline = inline or {}


class Using:
    """A field computed from the row by a function that reads the columns given."""

    __slots__ = ("columns", "compute")

    def __init__(self, columns: tuple[str, ...], compute: Callable[[Any], Any]) -> None:
        self.columns = columns
        self.compute = compute


def using(*columns: str) -> Callable[[Callable[[Any], Any]], Using]:
    """``name=using("amount", "probability")(lambda row: ...)``: a computed field and
    the columns its function reads (a column it reads but does not name would be
    missing from a page fetched for a selection of that field)."""
    return lambda compute: Using(columns, compute)


def reads(**fields: str | Using | Callable[[Any], Any]) -> Reads:
    """How each field is read from the row: ``name="column"``, ``name=using(...)(function)``
    or ``name=function`` (columns not declared: selecting it fetches whole rows)."""
    getters: dict[str, Callable[[Any], Any]] = {}
    columns: dict[str, tuple[str, ...] | None] = {}
    inline: dict[str, str] = {}
    for name, source in fields.items():
        if isinstance(source, str):
            getters[name], columns[name] = attrgetter(source), (source,)
            if source.isidentifier():
                inline[name] = f"row.{source}"
        elif isinstance(source, Using):
            getters[name], columns[name] = source.compute, source.columns
        else:
            getters[name], columns[name] = source, None
    return Reads(getters, columns, inline)


# The functions of the classmethods that make an object of their class from a row such
# that each of its fields is what the class's ``_reads`` read of the row: a compiled plan
# completes an object of leaves only from its row, without making it (server/compiled.py).
ROW_MAKERS: set[Callable[..., Any]] = set()


def row_maker(function: Callable[..., Any]) -> Callable[..., Any]:
    """Marks ``function`` (under ``@classmethod``) as one of ROW_MAKERS."""
    ROW_MAKERS.add(function)
    return function


class RowList:
    """A list of objects not made yet: their rows and the function making an object of
    a row. Iterated (graphql-core), it makes them; a compiled plan whose ``convert`` is
    a row maker of the list's type reads the leaves straight from the rows."""

    __slots__ = ("convert", "rows")

    def __init__(self, rows: list[Any], convert: Callable[[Any], Any]) -> None:
        self.rows = rows
        self.convert = convert

    def __iter__(self) -> Iterator[Any]:
        return map(self.convert, self.rows)


class RowBacked:
    _reads: ClassVar[Reads] = Reads({}, {})
    # Strawberry looks for a cast (strawberry.cast) on every object it checks the type
    # of; found on the class, that look-up does not fall through to __getattr__.
    __as_strawberry_type__: ClassVar[type | None] = None

    @classmethod
    @row_maker
    def from_row(cls, row: Any) -> Self:
        instance = object.__new__(cls)
        instance.__dict__["_row"] = row
        return instance

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the object does not have yet.
        read = type(self)._reads.get(name)
        row = self.__dict__.get("_row")
        if read is None or row is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = self.__dict__[name] = read(row)
        return value


class FromRow:
    """``cls.from_row`` of a class found when first called: a type of a module imported
    lazily (accounts and opportunities refer to each other). Compiled plans see through
    it (server/compiled.py), as they do through ``cls.from_row`` itself."""

    __slots__ = ("_find", "_made")

    def __init__(self, find: Callable[[], type[RowBacked]]) -> None:
        self._find = find
        self._made: Callable[[Any], Any] | None = None

    @property
    def made(self) -> Callable[[Any], Any]:
        made = self._made
        if made is None:
            made = self._made = self._find().from_row
        return made

    def __call__(self, row: Any) -> Any:
        return self.made(row)


class Related:
    """A to-one field: the row of ``loader`` whose key the source holds in ``key``
    (None: no row), made an object by ``convert`` (a missing or invisible row: null).

    Compiled execution (server/compiled.py) calls ``key`` on every object of a level
    and ``load`` once for all their keys: the same loader batch the resolvers would
    have made, without a resolver call per object. ``key_field``: the source's field
    the key is, which is all of the source this field reads."""

    __slots__ = ("convert", "key", "key_field", "loader")

    def __init__(self, loader: type[Any], key: str, convert: Callable[[Any], Any]) -> None:
        self.loader = loader
        self.key = attrgetter(key)
        self.key_field = key
        self.convert = convert

    async def load(self, loaders: Any, keys: list[Any], _arguments: dict[str, Any]
                   ) -> list[Any]:
        """Each key's object, loaded and made once per distinct key: a thousand deals
        of five phases make five phases, which the deals share (a shared source is
        completed into each deal's own result)."""
        distinct = list(dict.fromkeys(keys))
        rows = await load_all(loaders.get(self.loader), distinct)
        convert = self.convert
        if len(distinct) == len(keys):
            return [_converted(convert, row) for row in rows]
        made = {key: _converted(convert, row) for key, row in zip(distinct, rows, strict=True)}
        return [made[key] for key in keys]


async def load_all(loader: Any, keys: list[Any]) -> list[Any]:
    """``loader.load_many(keys)``, without waiting a turn of the event loop when every
    row is known already (read in another loader's statement, as an account's owner
    is): gather hears of futures that are done only at the next turn."""
    futures = [loader.load(key) for key in keys]
    if not all(future.done() for future in futures):
        return await asyncio.gather(*futures)  # type: ignore[no-any-return]
    for future in futures:
        error = future.exception()  # each one's looked at, as gather looks at them
        if error is not None:
            raise error
    return [future.result() for future in futures]


def _converted(convert: Callable[[Any], Any], row: Any) -> Any:
    if not row:
        return None
    try:
        return convert(row)
    except Exception as error:  # this object's field error, not the level's
        return error


def related(loader: type[Any], key: str, convert: Callable[[Any], Any]
            ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a resolver that does no more than what ``Related`` says. The resolver
    stays what graphql-core calls; the differential tests (tests/test_compiled.py)
    hold the two to the same answers."""
    return batched(Related(loader, key, convert))


def rows_of(loader: type[Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a resolver that makes its object of the row ``loader`` (a RowByIdLoader)
    gives it: a compiled plan has that loader read the to-one rows the query asks for
    of the object in its own statement (server/compiled.py ``Run.plan_joins``)."""

    def mark(resolver: Callable[..., Any]) -> Callable[..., Any]:
        resolver.rows_of = loader  # type: ignore[attr-defined]
        return resolver

    return mark


def batched(batch: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a resolver with the batch (``key``, ``load``) that gives the same values
    for a whole level of objects: server/compiled.py uses it."""

    def mark(resolver: Callable[..., Any]) -> Callable[..., Any]:
        resolver.batch = batch  # type: ignore[attr-defined]
        return resolver

    return mark
