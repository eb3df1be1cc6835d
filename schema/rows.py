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

from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar, Self


def reads(**fields: str | Callable[[Any], Any]) -> dict[str, Callable[[Any], Any]]:
    """How each field is read from the row: ``name="column"`` or ``name=function``."""
    return {name: attrgetter(source) if isinstance(source, str) else source
            for name, source in fields.items()}


class RowBacked:
    _reads: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    # Strawberry looks for a cast (strawberry.cast) on every object it checks the type
    # of; found on the class, that look-up does not fall through to __getattr__.
    __as_strawberry_type__: ClassVar[type | None] = None

    @classmethod
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


class Related:
    """A to-one field: the row of ``loader`` whose key the source holds in ``key``
    (None: no row), made an object by ``convert`` (a missing or invisible row: null).

    Compiled execution (server/compiled.py) calls ``key`` on every object of a level
    and ``load`` once for all their keys: the same loader batch the resolvers would
    have made, without a resolver call per object."""

    __slots__ = ("convert", "key", "loader")

    def __init__(self, loader: type[Any], key: str, convert: Callable[[Any], Any]) -> None:
        self.loader = loader
        self.key = attrgetter(key)
        self.convert = convert

    async def load(self, loaders: Any, keys: list[Any], _arguments: dict[str, Any]
                   ) -> list[Any]:
        rows = await loaders.get(self.loader).load_many(keys)
        return [_converted(self.convert, row) for row in rows]


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


def batched(batch: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a resolver with the batch (``key``, ``load``) that gives the same values
    for a whole level of objects: server/compiled.py uses it."""

    def mark(resolver: Callable[..., Any]) -> Callable[..., Any]:
        resolver.batch = batch  # type: ignore[attr-defined]
        return resolver

    return mark
