"""Query cost: computed before execution, limited per request, budgeted per client.

How a document is priced (the same rule for ``requested`` and ``actual``):

- Every object in the response costs 1. Scalars, enums and ``__typename`` cost 0.
- A connection (a type with ``edges`` and ``pageInfo``) and its edges only carry the
  nodes: they cost nothing themselves. What is selected on ``nodes`` or on
  ``edges { node }`` counts once per item of the page: ``first``, else ``last``, else
  DEFAULT_PAGE_SIZE, at most MAX_PAGE_SIZE. ``pageInfo`` is an object: 1.
  So ``accounts(first: 10) { nodes { contacts(first: 5) { nodes { id } } } }`` costs
  10 + 10 * 5 = 60.
- A list of objects without page arguments counts once per element of its list
  argument when it has one (``nodes(ids:)``, ``resolvePrices(items:)``), else
  LIST_FACTOR times: such lists are short by construction (a pipeline's phases, an
  invoice's lines, a week's rows, userErrors).
- ``__schema`` and ``__type`` cost INTROSPECTION_COST whatever they select: the
  schema, not the data, bounds them.
- Each root mutation field costs MUTATION_COST on top of its payload: it writes.
- On an interface or union a selection costs what its costliest type would.
- Fragments, inline fragments, @skip and @include, and variables (with their defaults)
  count as they will execute; fields merged by response key count once.

``requested`` is the price of the document before it runs; ``actual`` applies the same
rule to the data returned (pages as long as they came back, nulls cost nothing).

Before execution, a document over MAX_QUERY_COST (or over the client's whole budget)
is refused with QUERY_TOO_COMPLEX. Otherwise its cost is taken from the client's
token bucket (server/ratelimit.py): COST_BUDGET_PER_MINUTE for users and anonymous
clients, PARTNER_COST_BUDGET_PER_MINUTE for partner API keys; without enough tokens
it is refused with RATE_LIMITED and ``extensions.retryAfter`` in whole seconds
(over HTTP: status 429 and a Retry-After header). A refused operation never runs.

Every query and mutation result carries ``extensions.cost``:
``{requested, actual, remaining, resetAt}``; ``remaining`` and ``resetAt`` (when the
bucket is full again, ISO 8601 UTC) are null without a budget or while the bucket
store is unreachable. A subscription pays for its selection once, when it starts;
its events are pushed, not asked for, spend nothing and carry no cost.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    SelectionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_abstract_type,
    is_leaf_type,
    value_from_ast_untyped,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.pyutils import Undefined
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from server.ratelimit import Bucket, Limiter, create_limiter
from server.settings import Settings

LIST_FACTOR = 10
INTROSPECTION_COST = 10
MUTATION_COST = 10
# Costs stop growing here: a JSON number every client reads exactly.
MAX_COST = 2**53 - 1
# Fields priced per document at most; beyond, the document counts as MAX_COST.
MAX_STEPS = 50_000
CACHE_SIZE = 1_000

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
RATE_LIMITED = "RATE_LIMITED"
PARTNER_KEY_PREFIX = "key:"


@dataclass(frozen=True, slots=True)
class Priced:
    """How one response key is priced: ``own`` per value returned, then its children
    (None for leaves and for introspection, which is priced whole)."""

    own: int
    children: dict[str, Priced] | None
    # A list whose items may be lists ([[T]]): walked item by item. Other lists of
    # values without costly children cost ``own`` per item that is not null.
    nested: bool = False
    # The children that cost anything (free leaves are not walked): made once.
    costly: tuple[tuple[str, Priced], ...] = field(init=False, default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "costly", _costly(self.children or {}))


def _costly(shape: dict[str, Priced]) -> tuple[tuple[str, Priced], ...]:
    return tuple((key, priced) for key, priced in shape.items()
                 if priced.own or priced.costly)


_LEAF = Priced(0, None)


@dataclass(frozen=True, slots=True)
class Cost:
    requested: int
    shape: dict[str, Priced]

    def actual(self, data: Any) -> int:
        if not isinstance(data, dict):
            return 0
        return min(MAX_COST, _count(data, _costly(self.shape)))


def _count(data: dict[str, Any], costly: tuple[tuple[str, Priced], ...]) -> int:
    """What the values returned cost: only keys that cost anything are walked (a page
    of a thousand deals' names and amounts is its length times the deal's price)."""
    total = 0
    for key, priced in costly:
        value = data.get(key)
        if value is not None:
            total += _count_value(value, priced)
    return total


def _count_value(value: Any, priced: Priced) -> int:
    if isinstance(value, list):
        if not priced.costly:
            if not priced.nested:
                return priced.own * (len(value) - value.count(None))
            return sum(_count_value(item, priced) if isinstance(item, list) else priced.own
                       for item in value if item is not None)
        # A page of objects: each item's cost here, without a call per item.
        total, own, costly = 0, priced.own, priced.costly
        for item in value:
            if isinstance(item, dict):
                total += own + _count(item, costly)
            elif isinstance(item, list):
                total += _count_value(item, priced)
            elif item is not None:
                total += own
        return total
    if not priced.costly or not isinstance(value, dict):
        return priced.own
    return priced.own + _count(value, priced.costly)


class _TooComplex(Exception):
    pass


def _is_connection(type_: GraphQLNamedType) -> bool:
    return isinstance(type_, GraphQLObjectType) and "edges" in type_.fields and (
        "pageInfo" in type_.fields)


def _is_edge(type_: GraphQLNamedType) -> bool:
    return isinstance(type_, GraphQLObjectType) and "node" in type_.fields and (
        "cursor" in type_.fields)


def _is_list(type_: GraphQLOutputType) -> bool:
    return isinstance(get_nullable_type(type_), GraphQLList)  # type: ignore[arg-type]


def _is_nested_list(type_: GraphQLOutputType) -> bool:
    outer = get_nullable_type(type_)  # type: ignore[arg-type]
    return isinstance(outer, GraphQLList) and _is_list(outer.of_type)


class _Pricing:
    """One walk over one operation, with its variables."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode,
                 variables: dict[str, Any], *, default_page_size: int,
                 max_page_size: int) -> None:
        self.schema = schema
        self.fragments = {definition.name.value: definition
                          for definition in document.definitions
                          if isinstance(definition, FragmentDefinitionNode)}
        self.variables = variables
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        # A fragment's fields are the same nodes wherever it is spread: priced once.
        self.memo: dict[tuple[Any, ...], tuple[int, dict[str, Priced]]] = {}
        self.steps = 0

    def selection(self, sets: tuple[SelectionSetNode, ...], type_: GraphQLNamedType,
                  page: int) -> tuple[int, dict[str, Priced]]:
        key = (tuple(map(id, sets)), type_.name, page)
        known = self.memo.get(key)
        if known is not None:
            return known
        if is_abstract_type(type_):
            cost, shape = 0, {}
            for possible in self.schema.get_possible_types(type_):  # type: ignore[arg-type]
                one, one_shape = self.object_selection(sets, possible, page)
                cost = max(cost, one)
                for name, priced in one_shape.items():
                    shape.setdefault(name, priced)
        else:
            cost, shape = self.object_selection(sets, type_, page)  # type: ignore[arg-type]
        self.memo[key] = (cost, shape)
        return cost, shape

    def object_selection(self, sets: tuple[SelectionSetNode, ...], type_: GraphQLObjectType,
                         page: int) -> tuple[int, dict[str, Priced]]:
        fields: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for selection_set in sets:
            self.collect(selection_set, type_, fields, visited)
        cost = 0
        shape: dict[str, Priced] = {}
        for key, nodes in fields.items():
            one, shape[key] = self.field(type_, nodes, page)
            cost = min(MAX_COST, cost + one)
        return cost, shape

    def field(self, parent: GraphQLObjectType, nodes: list[FieldNode],
              page: int) -> tuple[int, Priced]:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _TooComplex
        name = nodes[0].name.value
        if name in ("__schema", "__type"):
            return INTROSPECTION_COST, Priced(INTROSPECTION_COST, None)
        definition = parent.fields.get(name)
        if definition is None:  # __typename; validation refuses unknown fields
            return 0, _LEAF
        extra = MUTATION_COST if parent is self.schema.mutation_type else 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return extra, Priced(extra, None) if extra else _LEAF
        connection = _is_connection(named)
        own = extra + (0 if connection or _is_edge(named) else 1)
        sets = tuple(node.selection_set for node in nodes if node.selection_set)
        inner, children = self.selection(
            sets, named, self.page_size(nodes[0]) if connection else 0)
        count = 1
        if _is_list(definition.type):
            count = page if _is_connection(parent) else self.list_length(definition, nodes[0])
        return min(MAX_COST, count * (own + inner)), Priced(own, children,
                                                            _is_nested_list(definition.type))

    def collect(self, selection_set: SelectionSetNode, type_: GraphQLObjectType,
                fields: dict[str, list[FieldNode]], visited: set[str]) -> None:
        for selection in selection_set.selections:
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self.applies(selection.type_condition, type_):
                    self.collect(selection.selection_set, type_, fields, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in visited or fragment is None:
                    continue
                visited.add(name)
                if self.applies(fragment.type_condition, type_):
                    self.collect(fragment.selection_set, type_, fields, visited)

    def applies(self, condition: NamedTypeNode | None, type_: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        conditional = self.schema.get_type(condition.name.value)
        if conditional is type_:
            return True
        return is_abstract_type(conditional) and self.schema.is_sub_type(
            conditional, type_)  # type: ignore[arg-type]

    def included(self, selection: SelectionNode) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = next((self.value(argument.value)
                              for argument in directive.arguments or ()
                              if argument.name.value == "if"), None)
            if (name == "skip" and condition is True) or (
                    name == "include" and condition is False):
                return False
        return True

    def value(self, node: Any) -> Any:
        value = value_from_ast_untyped(node, self.variables)
        return None if value is Undefined else value

    def page_size(self, node: FieldNode) -> int:
        sizes = [size for argument in node.arguments or ()
                 if argument.name.value in ("first", "last")
                 and isinstance(size := self.value(argument.value), int)
                 and not isinstance(size, bool)]
        size = max(sizes) if sizes else self.default_page_size
        return max(0, min(size, self.max_page_size))

    def list_length(self, definition: Any, node: FieldNode) -> int:
        for argument in node.arguments or ():
            argument_definition = definition.args.get(argument.name.value)
            if argument_definition is None or not isinstance(
                    get_nullable_type(argument_definition.type), GraphQLList):
                continue
            value = self.value(argument.value)
            if isinstance(value, list):
                return len(value)
            if value is not None:
                return 1  # one value given for a list is a list of one
        return LIST_FACTOR


def price(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None,
          variables: dict[str, Any] | None, *, default_page_size: int,
          max_page_size: int) -> Cost:
    """The cost of the operation the request runs (see the module's docstring)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return Cost(0, {})
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if definition.default_value is not None:
            values[definition.variable.name.value] = value_from_ast_untyped(
                definition.default_value)
    values.update(variables or {})
    root = schema.get_root_type(operation.operation)
    if root is None:
        return Cost(0, {})
    pricing = _Pricing(schema, document, values, default_page_size=default_page_size,
                       max_page_size=max_page_size)
    try:
        requested, shape = pricing.selection((operation.selection_set,), root, 0)
    except (_TooComplex, RecursionError):
        return Cost(MAX_COST, {})
    return Cost(requested, shape)


class CostLimits:
    """One per app: the cost cache and the client buckets. Called, it makes the
    extension for one operation, so it goes in the schema's extension list as is."""

    def __init__(self, settings: Settings, limiter: Limiter | None = None) -> None:
        self.settings = settings
        self._limiter = limiter
        self._costs: OrderedDict[tuple[str, str | None, bytes], Cost] = OrderedDict()

    def __call__(self) -> QueryCost:
        return QueryCost(self)

    @property
    def limiter(self) -> Limiter:
        # Made on first use, inside the running event loop: a Redis client binds
        # its connections to the loop that opens them.
        if self._limiter is None:
            self._limiter = create_limiter(self.settings)
        return self._limiter

    async def aclose(self) -> None:
        if self._limiter is not None:
            await self._limiter.aclose()

    def budget_of(self, client: str) -> int:
        if client.startswith(PARTNER_KEY_PREFIX):
            return self.settings.partner_cost_budget_per_minute
        return self.settings.cost_budget_per_minute

    def cost_of(self, schema: GraphQLSchema, document: DocumentNode, query: str | None,
                operation_name: str | None, variables: dict[str, Any] | None) -> Cost:
        key = None
        if query is not None:
            try:
                key = (query, operation_name,
                       orjson.dumps(variables, option=orjson.OPT_SORT_KEYS))
            except TypeError:
                key = None
        if key is not None and (known := self._costs.get(key)) is not None:
            self._costs.move_to_end(key)
            return known
        cost = price(schema, document, operation_name, variables,
                     default_page_size=self.settings.default_page_size,
                     max_page_size=self.settings.max_page_size)
        if key is not None:
            self._costs[key] = cost
            if len(self._costs) > CACHE_SIZE:
                self._costs.popitem(last=False)
        return cost


class QueryCost(SchemaExtension):
    """Prices the operation once it is valid, refuses it before it runs when it is
    too costly or the client's budget is spent, and reports ``extensions.cost``.

    Queries and mutations are refused by setting the operation's result, which
    Strawberry then returns without executing. A subscription's stream does not look
    at a result set beforehand, so its start is refused by raising: Strawberry sends
    that error as the operation's result and never subscribes.
    """

    def __init__(self, limits: CostLimits) -> None:
        self.limits = limits
        self.cost: Cost | None = None
        self.bucket: Bucket | None = None
        self.looked = False
        self.refused = False
        self.streaming = False

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        self.cost = cost = self.limits.cost_of(
            context.schema._schema, context.graphql_document, context.query,
            context.operation_name, context.variables)
        client = getattr(context.context, "client_id", None) or "anonymous"
        budget = self.limits.budget_of(client)
        ceiling = min(limit for limit in (self.limits.settings.max_query_cost, budget,
                                          MAX_COST) if limit > 0)
        error: GraphQLError | None = None
        if cost.requested > ceiling:
            await self._look(client, budget)
            limit = (f"this client's whole budget of {budget} a minute" if ceiling == budget
                     else f"the limit of {ceiling} a request")
            error = GraphQLError(
                f"the query costs {cost.requested}, more than {limit}: ask for smaller "
                "pages or fewer nested lists",
                extensions={"code": QUERY_TOO_COMPLEX, "cost": cost.requested,
                            "maxCost": ceiling})
        elif budget > 0:
            self.looked = True
            self.bucket = await self.limits.limiter.take(client, cost.requested, budget)
            if self.bucket is not None and not self.bucket.allowed:
                retry_after = max(1, math.ceil(self.bucket.retry_after))
                error = GraphQLError(
                    f"the query costs {cost.requested} and only {self.bucket.remaining} of "
                    f"this client's budget of {budget} a minute is left: retry in "
                    f"{retry_after} s", extensions={"code": RATE_LIMITED,
                                                    "retryAfter": retry_after})
        if error is not None:
            self.refused = True
            if context.operation_type is OperationType.SUBSCRIPTION:
                raise error
            context.result = GraphQLExecutionResult(data=None, errors=[error])
        elif context.operation_type is OperationType.SUBSCRIPTION:
            self.streaming = True
        yield

    async def get_results(self) -> dict[str, Any]:
        if self.streaming:
            return {}
        context = self.execution_context
        if not self.looked:  # refused before execution (parse, validation): free
            client = getattr(context.context, "client_id", None) or "anonymous"
            await self._look(client, self.limits.budget_of(client))
        requested = self.cost.requested if self.cost else 0
        actual = 0
        if self.cost is not None and not self.refused and context.result is not None:
            actual = self.cost.actual(context.result.data)
        bucket = self.bucket
        return {"cost": {
            "requested": requested,
            "actual": actual,
            "remaining": bucket.remaining if bucket else None,
            "resetAt": _iso(datetime.now(UTC) + timedelta(seconds=bucket.full_in))
            if bucket else None,
        }}

    async def _look(self, client: str, budget: int) -> None:
        self.looked = True
        if budget > 0:
            self.bucket = await self.limits.limiter.take(client, 0, budget)


def _iso(moment: datetime) -> str:
    """ISO 8601 with its offset, as every DateTime of the API; rounded up to the
    second, so the bucket is full by then."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.isoformat()
