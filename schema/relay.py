"""Relay: the Node interface, opaque ids, and cursor connections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from operator import attrgetter
from typing import Any, ClassVar, Generic, TypeVar

import strawberry
from sqlalchemy.engine import Row
from strawberry import Private

from loaders.query import Page, PageArgs
from schema.rows import RowList

NodeT = TypeVar("NodeT")


@strawberry.interface(description="An object with a globally unique, opaque ID.")
class Node:
    id: strawberry.ID = strawberry.field(description="The opaque global ID of the object.")


@strawberry.type(description="Where a page stands in the whole list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="When paging forward: true when `after` was given."
    )
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A node and its position in the list.")
class Edge(Generic[NodeT]):
    node: NodeT
    _page: Private[Page]
    _row: Private[Row[Any]]

    @strawberry.field(description="Pass as `after` or `before` to page from this edge.")
    def cursor(self) -> str:
        return self._page.cursor(self._row)


class RowNodes(RowList):
    """A connection's nodes before they are made: a RowList of its page's rows, whose
    objects, once made, are the connection's nodes (made once, and kept)."""

    __slots__ = ("connection",)

    def __init__(self, connection: Connection[Any]) -> None:
        self.connection = connection

    @property  # type: ignore[override]
    def rows(self) -> list[Any]:
        return self.connection.__dict__["_page"].rows  # type: ignore[no-any-return]

    @property  # type: ignore[override]
    def convert(self) -> Callable[[Any], Any]:
        return self.connection.__dict__["_convert"]  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.connection.nodes)


@strawberry.type(description="A page of a list, with keyset (cursor) pagination.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    nodes: list[NodeT] = strawberry.field(description="The nodes of the edges, for short queries.")
    page_info: PageInfo
    _count: Private[Callable[[], Awaitable[int]]]
    # How compiled plans read a field, where not as an attribute (server/compiled.py).
    _compiled_reads: ClassVar[dict[str, Callable[[Any], Any]]]

    @strawberry.field(description="How many match the filter in all pages (costs a query).")
    async def total_count(self) -> int:
        return await self._count()

    def __getattr__(self, name: str) -> Any:
        # A connection made by connection() builds its nodes, edges and page info when
        # first read: most queries read only the nodes of a thousand nested pages, and
        # a compiled plan may read the nodes' leaves from the rows (RowNodes).
        page = self.__dict__.get("_page")
        if page is None or name not in ("nodes", "edges", "page_info"):
            raise AttributeError(f"'Connection' object has no attribute {name!r}")
        rows = page.rows
        if name == "nodes":
            convert = self.__dict__["_convert"]
            value: Any = [convert(row) for row in rows]
        elif name == "edges":
            value = [Edge(node=node, _page=page, _row=row)
                     for node, row in zip(self.nodes, rows, strict=True)]
        else:
            value = PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.has_previous,
                start_cursor=page.cursor(rows[0]) if rows else None,
                end_cursor=page.cursor(rows[-1]) if rows else None,
            )
        self.__dict__[name] = value
        return value


def planned_columns(info: Any) -> tuple[str, ...] | None:
    """The columns the nodes of this field's connection read, when its compiled plan
    told (server/compiled.py); None, every column, when nothing did: graphql-core's
    execution, or a selection the plan cannot see into. A resolver that makes the
    nodes from its rows may fetch only those (resolvers/pages.py ``list_rows``)."""
    planned = getattr(info.context, "planned_columns", None)
    if not planned:
        return None
    # By the field's node in the document, not its path: the same field at two places
    # may select different columns.
    return planned.get(field_node_key(info))  # type: ignore[no-any-return]


def field_node_key(info: Any) -> int:
    """The identity of the field's (first) node in the operation's document: what a
    field's selection decides is filed under for the operation (the document and its
    nodes live as long as the operation), the same at every path the field resolves
    at. server/compiled.py files by the same key."""
    return id(info._raw_info.field_nodes[0])


def connection(
    page: Page,
    convert: Callable[[Row[Any]], NodeT],
    count: Callable[[], Awaitable[int]],
) -> Connection[NodeT]:
    made: Connection[NodeT] = object.__new__(Connection)
    made.__dict__.update(_convert=convert, _count=count, _page=page)
    return made


def _nodes_or_rows(connection: Connection[Any]) -> Any:
    """Its nodes, or RowNodes when they are not made yet (server/compiled.py)."""
    values = connection.__dict__
    if "nodes" in values or "_page" not in values:
        return connection.nodes
    return RowNodes(connection)


Connection._compiled_reads = {"nodes": _nodes_or_rows}


class Children:
    """A nested connection of every object of a level at once (``batched``): one
    page loader for the level's arguments, ``load_many`` of the parents' keys.

    Its connections read their rows only for the nodes (made by ``convert``) and for
    the cursors (the sort keys, always fetched), so a plan that knows which columns
    its nodes read passes them to ``load_columns``."""

    __slots__ = ("convert", "counts", "key", "pages")

    key_field = "_key"

    def __init__(self, pages: type[Any], counts: type[Any],
                 convert: Callable[[Row[Any]], Any]) -> None:
        self.pages = pages
        self.counts = counts
        self.convert = convert
        self.key = attrgetter(self.key_field)

    async def load(self, loaders: Any, keys: list[int], arguments: dict[str, Any]
                   ) -> list[Any]:
        return await self.load_columns(loaders, keys, arguments, None)

    async def load_columns(self, loaders: Any, keys: list[int], arguments: dict[str, Any],
                           columns: tuple[str, ...] | None) -> list[Any]:
        filter, order_by = arguments.get("filter"), arguments.get("order_by")
        args = PageArgs(arguments.get("first"), arguments.get("after"),
                        arguments.get("last"), arguments.get("before"))
        # Without columns, the loader graphql-core's resolvers share (child_connection).
        extra = () if columns is None else (columns,)
        pages = await loaders.get(self.pages, args, filter, order_by, *extra).load_many(keys)
        counts = loaders.get(self.counts, filter)
        return [connection(page, self.convert, partial(counts.load, key))
                for key, page in zip(keys, pages, strict=True)]


async def child_connection(
    loaders: Any, key: int, *, pages: type[Any], counts: type[Any], args: PageArgs,
    filter: Any, order_by: Any, convert: Callable[[Row[Any]], NodeT],
) -> Connection[NodeT]:
    """A nested connection (Account.contacts ...): this parent's page from a loader that
    pages every parent of the request at once, and its count only when asked."""
    page = await loaders.get(pages, args, filter, order_by).load(key)

    async def count() -> int:
        return await loaders.get(counts, filter).load(key)

    return connection(page, convert, count)
