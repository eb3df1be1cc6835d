"""Compiled execution of queries: one plan per validated operation, run level by level.

graphql-core walks the result field by field: for every field of every object it
builds a resolve info, looks the field up, dispatches on its type and checks for
awaitables, about 10-15 us per resolved field. A dashboard of 100 accounts with their
opportunities and budgets resolves tens of thousands of fields, so that walk, not the
database, decided how long it took.

Here an operation is compiled once (after graphql-core has parsed and validated it)
into a plan per selection set: the fields to produce, how each is read (a plain
attribute read for a field without resolver, else the field's resolver) and how its
value is completed (coerced leaf, list, object, abstract type). The plan then runs one
level of the result at a time: every resolver of every object at a level is called,
their awaitables awaited together (so each loader gets one batch per level), and the
values written straight into the result dicts, whose objects make the next level.

The answers are graphql-core's, errors and null propagation included
(tests/test_compiled.py runs queries through both and compares them): a field error
nulls the nearest nullable position on its way up, as the specification says, and
errors below a nulled position are dropped as graphql-core drops them. Resolvers,
loaders and their authorization are the same ones graphql-core calls. What the plan
does not cover (mutations, which run serially; subscriptions; @defer/@stream;
operations that disable error propagation) runs through graphql-core.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from copy import copy
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import orjson
from graphql import (
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLString,
    OperationType,
    located_error,
)
from graphql.execution.collect_fields import collect_subfields
from graphql.execution.executor import CollectedErrors
from graphql.execution.values import get_argument_values
from graphql.language import (
    FieldNode,
    OperationDefinitionNode,
    VariableNode,
    Visitor,
    print_ast,
    visit,
)
from graphql.pyutils import Path, Undefined, inspect
from graphql.type import is_abstract_type, is_leaf_type, is_list_type, is_non_null_type
from strawberry.types.arguments import convert_arguments

from loaders.query import CURSORS
from models.db import UNCOUNTED
from schema.rows import ROW_MAKERS, FromRow, Related, RowList
from schema.scalars import EXACT_OUTPUT_INPUTS

if TYPE_CHECKING:
    from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
    from graphql.execution.executor import Executor

logger = logging.getLogger("crmgraph.compiled")

PLAN_CACHE_SIZE = 1_000
CAST = "__as_strawberry_type__"  # strawberry.cast's mark on an object

# A leaf of a selection of attribute leaves: response key, getter, coerce, nullable.
Leaf = tuple[str, Callable[[Any], Any], Callable[[Any], Any], bool]

# FieldPlan.columns before it is first needed.
NOT_PLANNED = object()

# How a value is completed (Completion.kind).
LEAF, OBJECT, ABSTRACT, LIST = range(4)


class Completion:
    """How a field's value of one (wrapped) type is completed."""

    __slots__ = ("checked", "coerce", "field_details", "inner", "kind", "nullable", "plans",
                 "type")

    def __init__(self, kind: int, type_: Any, nullable: bool, field_details: FieldDetailsList,
                 inner: Completion | None = None) -> None:
        self.kind = kind
        self.type = type_
        self.nullable = nullable
        self.field_details = field_details
        self.inner = inner  # the item's completion, for lists
        self.coerce = type_.coerce_output_value if kind == LEAF else None
        # Selection plans by runtime object type, made when first needed.
        self.plans: dict[str, SelectionPlan] = {}
        # Classes whose instances (not cast to another type) passed the type's check:
        # Strawberry's is_type_of depends on nothing else.
        self.checked: set[type] = set()


class FieldPlan:
    """One response key of a selection set on an object type."""

    __slots__ = ("batch", "columns", "completion", "definition", "direct", "field_details",
                 "field_name", "getter", "joins", "name", "nodes", "parent_type", "resolve",
                 "static_args")

    def __init__(self, name: str, parent_type: GraphQLObjectType, definition: GraphQLField,
                 field_details: FieldDetailsList, resolve: Callable[..., Any],
                 getter: Callable[[Any], Any] | None, static_args: dict[str, Any] | None,
                 completion: Completion) -> None:
        self.name = name
        self.parent_type = parent_type
        self.definition = definition
        self.field_details = field_details
        self.nodes = [details.node for details in field_details]
        self.field_name = self.nodes[0].name.value
        self.resolve = resolve
        self.getter = getter  # a plain attribute read, for fields without resolver
        self.static_args = static_args  # when the arguments use no variables
        self.completion = completion
        self.direct: Direct | None = None
        # A resolver marked with the batch that gives its values for a whole level
        # (schema/rows.py ``batched``: a to-one row, a nested connection).
        self.batch: Any = None
        # The row columns the objects of a batch that can fetch fewer read (Run.columns).
        self.columns: tuple[str, ...] | object | None = NOT_PLANNED
        # The to-one rows its resolver's loader reads in its own statement (Run.joins).
        self.joins: tuple[tuple[str, type[Any]], ...] | object = NOT_PLANNED


class Direct:
    """A Strawberry resolver called as Strawberry calls it, without the per-call layers:
    its arguments are converted to Python once per run instead of once per object, and
    its coroutine is awaited as it is, not inside another. Only for fields without
    field extensions or permission classes, in a schema without exception handlers,
    where those layers do nothing else."""

    __slots__ = ("field", "func", "info_class", "info_name", "parent_name", "root_name",
                 "rows_of", "takes_self")

    def __init__(self, field: Any, info_class: type) -> None:
        resolver = field.base_resolver
        self.field = field
        self.func = resolver.wrapped_func
        self.takes_self = resolver.self_parameter is not None
        self.parent_name = resolver.parent_parameter.name if resolver.parent_parameter else None
        self.root_name = resolver.root_parameter.name if resolver.root_parameter else None
        self.info_name = resolver.info_parameter.name if resolver.info_parameter else None
        self.info_class = info_class
        # The loader whose row it makes its object of (schema/rows.py ``rows_of``).
        self.rows_of: type[Any] | None = getattr(self.func, "rows_of", None)

    def call(self, source: Any, info: Any, converted: dict[str, Any]) -> Any:
        kwargs = dict(converted)
        if self.parent_name is not None:
            kwargs[self.parent_name] = source
        if self.root_name is not None:
            kwargs[self.root_name] = source
        if self.info_name is not None:
            kwargs[self.info_name] = self.info_class(_raw_info=info, _field=self.field)
        if self.takes_self:
            return self.func(source, **kwargs)
        return self.func(**kwargs)


def _direct(definition: GraphQLField, strawberry_schema: Any) -> Direct | None:
    field = (definition.extensions or {}).get("strawberry-definition")
    if strawberry_schema is None or field is None or getattr(field, "base_resolver", None) is None:
        return None
    converter = strawberry_schema.schema_converter
    if field.extensions or field.is_subscription or getattr(
            converter, "_exception_handler_specs", True) or not callable(
            field.base_resolver.wrapped_func):
        return None
    return Direct(field, strawberry_schema.config.info_class)


class SelectionPlan:
    __slots__ = ("complete_leaves", "complete_row", "fields", "names", "type")

    def __init__(self, type_: GraphQLObjectType, fields: list[FieldPlan]) -> None:
        self.type = type_
        self.fields = fields
        # Each result object starts with its keys in the selection's order: values
        # arrive level by level, not in that order.
        self.names = [field.name for field in fields]
        # A selection of attribute leaves only (a page of deals' names and amounts, a
        # plan's rows): an object of it is completed where it is met, by one function.
        self.complete_leaves: Callable[[Any], dict[str, Any] | None] | None = _leaves_function([
            (field.name, field.getter, field.completion.coerce,  # type: ignore[misc]
             field.completion.nullable)
            for field in fields
        ]) if fields and all(field.getter is not None and field.completion.kind == LEAF
                             for field in fields) else None
        # The same of a row, where every leaf is read from the row (schema/rows.py).
        self.complete_row: Callable[[Any], dict[str, Any] | None] | None = getattr(
            self.complete_leaves, "from_row", None)


class Position:
    """Where a completed value sits: ``container[key]``. Errors walk ``parent`` up to
    the nearest nullable position, which becomes null."""

    __slots__ = ("_path", "container", "key", "nullable", "parent")

    def __init__(self, container: Any, key: Any, nullable: bool, parent: Position | None,
                 path: Path | None) -> None:
        self.container = container
        self.key = key
        self.nullable = nullable
        self.parent = parent
        self._path = path

    @property
    def path(self) -> Path | None:
        return self._path


class Entry:
    """An object of the result whose fields are still to be resolved."""

    __slots__ = ("position", "result", "source")

    def __init__(self, source: Any, result: dict[str, Any], position: Position) -> None:
        self.source = source
        self.result = result
        self.position = position


class Item(Position):
    """An object in a list of objects (a page's nodes): its entry and its position in
    one, its path made only when asked (for a resolver's info or an error)."""

    __slots__ = ("result", "source")

    def __init__(self, source: Any, result: dict[str, Any], items: list[Any], index: int,
                 nullable: bool, parent: Position) -> None:
        self.container = items
        self.key = index
        self.nullable = nullable
        self.parent = parent
        self._path = None
        self.source = source
        self.result = result

    @property
    def path(self) -> Path | None:
        path = self._path
        if path is None:
            path = self._path = Path(self.parent.path, self.key, None)  # type: ignore[union-attr]
        return path

    @property
    def position(self) -> Position:
        return self


class Compiler:
    """Plans for one schema, cached by operation: the parsed documents are cached (and
    so the same objects) for as long as they are asked for."""

    def __init__(self, *, verify: bool = False, size: int = PLAN_CACHE_SIZE) -> None:
        self.verify = verify
        # With verify, each query also runs through graphql-core (with loaders of its
        # own, its statements uncounted) and any difference is kept here and logged.
        self.mismatches: list[dict[str, Any]] = []
        self.size = size
        # id(operation) -> (operation, root plan): the operation is kept alive with its
        # plan, so its id cannot be reused by another while the plan is cached.
        self._plans: dict[int, tuple[OperationDefinitionNode, SelectionPlan]] = {}

    @property
    def plans(self) -> int:
        return len(self._plans)

    def compiles(self, executor: Executor) -> bool:
        """Queries with error propagation; the rest is graphql-core's."""
        return (executor.operation.operation is OperationType.QUERY
                and executor.error_propagation)

    async def execute(self, executor: Executor, root_type: GraphQLObjectType, root_value: Any,
                      grouped: GroupedFieldSet) -> dict[str, Any] | None:
        run = Run(executor)
        operation = executor.operation
        cached = self._plans.get(id(operation))
        if cached is not None and cached[0] is operation:
            plan = cached[1]
        else:
            plan = run.plan_for(root_type, grouped)
            # @skip/@include on a variable make the plan depend on the variables.
            if not _variable_directives(executor):
                if len(self._plans) >= self.size:
                    self._plans.pop(next(iter(self._plans)))
                self._plans[id(operation)] = (operation, plan)
        data = await run.execute(root_value, plan)
        if self.verify:
            await self.compare(executor, root_type, root_value, grouped, data)
        return data

    async def compare(self, executor: Executor, root_type: GraphQLObjectType, root_value: Any,
                      grouped: GroupedFieldSet, data: dict[str, Any] | None) -> None:
        ours = (orjson.dumps(data), _errors(executor.collected_errors.errors))
        theirs = await self._again(executor, root_type, root_value, grouped, compiled=False)
        if ours == theirs:
            return
        # Other requests may have written in between: the plan runs once more, after
        # graphql-core. A plan that now agrees read other data, not wrongly.
        if await self._again(executor, root_type, root_value, grouped, compiled=True) == theirs:
            return
        mismatch = {"document": print_ast(executor.operation),
                    "variables": executor.variable_values.coerced,
                    "compiled": ours, "graphql-core": theirs}
        self.mismatches.append(mismatch)
        logger.error("compiled execution differs from graphql-core: %s", mismatch)

    async def _again(self, executor: Executor, root_type: GraphQLObjectType, root_value: Any,
                     grouped: GroupedFieldSet, *, compiled: bool) -> tuple[bytes, list[bytes]]:
        """The operation run again, with loaders of its own and its statements
        uncounted, by the plan or by graphql-core."""
        other = copy(executor)
        other.collected_errors = CollectedErrors()
        other._relevant_sub_fields = {}  # graphql-core's own memo
        context = executor.context_value
        if hasattr(context, "for_operation"):
            other.context_value = context.for_operation()
        token = UNCOUNTED.set(True)
        try:
            if compiled:
                operation = executor.operation
                plan = self._plans.get(id(operation), (operation, None))[1] or Run(
                    other).plan_for(root_type, grouped)
                data = await Run(other).execute(root_value, plan)
            else:
                try:
                    data = other.execute_root_grouped_field_set(
                        root_type, root_value, grouped, False, None)
                    if other.is_awaitable(data):
                        data = await data
                except GraphQLError as error:
                    other.collected_errors.add(error, None)
                    data = None
        finally:
            UNCOUNTED.reset(token)
        return orjson.dumps(data), _errors(other.collected_errors.errors)


class Run:
    """One execution of a plan."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.errors = executor.collected_errors
        self.variables = executor.variable_values
        self.hide_suggestions = executor.hide_suggestions
        self.args: dict[int, Any] = {}
        self.data_lost = False
        self.planned: dict[int, tuple[str, ...]] | None = getattr(
            executor.context_value, "planned_columns", None)

    # --- planning ---------------------------------------------------------------------

    def plan_for(self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet
                 ) -> SelectionPlan:
        schema = self.executor.schema
        strawberry_schema = getattr(schema, "_strawberry_schema", None)
        default_resolver = self.executor.field_resolver
        fields: list[FieldPlan] = []
        for name, field_details in grouped.items():
            node = field_details[0].node
            definition = schema.get_field(parent_type, node.name.value)
            if definition is None:
                continue
            resolve = definition.resolve or default_resolver
            field = FieldPlan(
                name, parent_type, definition, field_details, resolve,
                _attribute_getter(resolve, definition, parent_type),
                _static_args(definition, field_details),
                _completion(definition.type, field_details))
            if field.getter is None and definition.resolve is not None:
                field.direct = _direct(definition, strawberry_schema)
                if field.direct is not None:
                    field.batch = getattr(field.direct.func, "batch", None)
            fields.append(field)
        return SelectionPlan(parent_type, fields)

    def subplan(self, completion: Completion, object_type: GraphQLObjectType
                ) -> SelectionPlan:
        plan = completion.plans.get(object_type.name)
        if plan is None:
            executor = self.executor
            grouped, _defer_usages, _forbidden = collect_subfields(
                executor.schema, executor.fragments, executor.variable_values,
                executor.operation, object_type, completion.field_details,
                executor.hide_suggestions)
            plan = self.plan_for(object_type, grouped)
            completion.plans[object_type.name] = plan
        return plan

    # --- execution --------------------------------------------------------------------

    async def execute(self, root_value: Any, plan: SelectionPlan) -> dict[str, Any] | None:
        data: dict[str, Any] = dict.fromkeys(plan.names)
        root = Position(None, None, False, None, None)
        level: list[tuple[SelectionPlan, list[Entry]]] = [(plan, [Entry(root_value, data, root)])]
        while level:
            level = await self.run_level(level)
        return None if self.data_lost else data

    async def run_level(self, level: list[tuple[SelectionPlan, list[Entry]]]
                        ) -> list[tuple[SelectionPlan, list[Entry]]]:
        following: dict[int, tuple[SelectionPlan, list[Entry]]] = {}
        pending: list[Any] = []
        waiting: list[tuple[FieldPlan, Entry]] = []
        batches: list[tuple[FieldPlan, list[Entry], Any]] = []
        for plan, entries in level:
            for field in plan.fields:
                if field.batch is not None:
                    self.load_batch(field, entries, following, batches)
                    continue
                getter = field.getter
                if getter is not None and field.completion.kind == LEAF:
                    self.read_leaves(field, getter, entries, following)
                    continue
                if getter is not None:
                    for entry in entries:
                        try:
                            value = getter(entry.source)
                        except Exception as error:  # a field error
                            self.field_error(error, field, entry)
                            continue
                        self.complete_field(field, entry, value, following)
                    continue
                direct = field.direct
                if field.completion.kind != LEAF:
                    self.plan_columns(field)
                    if direct is not None and direct.rows_of is not None:
                        self.plan_joins(field, direct.rows_of)
                try:
                    args = self.arguments(field)
                    if direct is not None:
                        args = self.converted(field, args)
                except Exception as error:  # arguments that do not convert: a field error
                    for entry in entries:
                        self.field_error(error, field, entry)
                    continue
                resolve = field.resolve
                build_info = self.executor.build_resolve_info
                needs_info = direct is None or direct.info_name is not None
                info = None
                for entry in entries:
                    try:
                        if needs_info:
                            info = build_info(field.definition, field.nodes, plan.type,
                                              Path(entry.position.path, field.name,
                                                   plan.type.name))
                        value = (direct.call(entry.source, info, args) if direct is not None
                                 else resolve(entry.source, info, **args))
                    except Exception as error:  # a field error
                        self.field_error(error, field, entry)
                        continue
                    if _is_awaitable(value):
                        pending.append(value)
                        waiting.append((field, entry))
                    else:
                        self.complete_field(field, entry, value, following)
        if pending or batches:
            awaited = [*pending, *(load for _f, _e, load in batches)]
            if len(awaited) == 1:
                # Awaited in this task: gather would run it in a task of its own, and
                # take three more turns of the event loop to hear it was done (a small
                # query's two levels: 19 turns in all, 13 this way). Cancellation
                # passes through, as out of gather.
                try:
                    values = [await awaited[0]]
                except Exception as error:  # as gather(return_exceptions=True) gives it
                    values = [error]
            else:
                values = await asyncio.gather(*awaited, return_exceptions=True)
            for (field, entry), value in zip(waiting, values, strict=False):
                if isinstance(value, BaseException):
                    if not isinstance(value, Exception):
                        raise value  # cancellation and exits are not field errors
                    self.field_error(value, field, entry)
                else:
                    self.complete_field(field, entry, value, following)
            for (field, entries, _load), loaded in zip(batches, values[len(waiting):],
                                                       strict=True):
                self.complete_batch(field, entries, loaded, following)
        return list(following.values())

    def load_batch(self, field: FieldPlan, entries: list[Entry],
                   following: dict[int, tuple[SelectionPlan, list[Entry]]],
                   batches: list[tuple[FieldPlan, list[Entry], Any]]) -> None:
        """A batched field for every object of the level: the keys of the sources,
        one ``load`` for all of them (a None key is a null without loading)."""
        batch = field.batch
        try:
            arguments = self.converted(field, self.arguments(field)) if (
                field.definition.args) else {}
        except Exception as error:  # arguments that do not convert: a field error
            for entry in entries:
                self.field_error(error, field, entry)
            return
        keyed: list[Entry] = []
        keys: list[Any] = []
        for entry in entries:
            try:
                key = batch.key(entry.source)
            except Exception as error:  # a field error
                self.field_error(error, field, entry)
                continue
            if key is None:
                self.complete_field(field, entry, None, following)
                continue
            keyed.append(entry)
            keys.append(key)
        if keys:
            loaders = self.executor.context_value.loaders
            if hasattr(batch, "load_columns"):
                load = batch.load_columns(loaders, keys, arguments, self.columns(field))
            else:
                load = batch.load(loaders, keys, arguments)
            batches.append((field, keyed, load))

    def columns(self, field: FieldPlan) -> tuple[str, ...] | None:
        """The columns the selection of a batched field reads of the rows its objects
        are made from (None: it cannot be told, so every column)."""
        columns = field.columns
        if columns is NOT_PLANNED:
            found: set[str] = set()
            columns = field.columns = (tuple(sorted(found))
                                       if self.row_columns(field.completion, found) else None)
        return columns  # type: ignore[return-value]

    def plan_columns(self, field: FieldPlan) -> None:
        """Tells a resolver that makes row-backed nodes (a root connection) the columns
        they read, when they can be told (schema/relay.py planned_columns)."""
        planned = self.planned
        if planned is not None:
            columns = self.columns(field)
            if columns is not None:
                planned[id(field.nodes[0])] = columns

    def plan_joins(self, field: FieldPlan, loader: type[Any]) -> None:
        """Asks the loader whose row the resolver makes its object of to read, in the
        same statement, the to-one rows that the selection's batched fields load by a
        column of that row (loaders/base.py ``RowByIdLoader.join``): an account and its
        owner in one statement. Before the resolver runs, so before its batch does."""
        joins = field.joins
        if joins is NOT_PLANNED:
            joins = field.joins = self.joins(field)
        if joins:
            loaders = self.executor.context_value.loaders
            parent = loaders.get(loader)
            for column, child in joins:  # type: ignore[attr-defined]
                parent.join(column, loaders.get(child))

    def joins(self, field: FieldPlan) -> tuple[tuple[str, type[Any]], ...]:
        """(column, loader) of each field of the object's selection that is a to-one
        row of a loader that can be joined (``Related`` to a RowByIdLoader), keyed by
        one column of the object's row."""
        completion = field.completion
        if completion.kind != OBJECT:
            return ()
        object_type = completion.type
        origin = getattr((object_type.extensions or {}).get("strawberry-definition"),
                         "origin", None)
        reads = getattr(origin, "_reads", None)
        if reads is None:
            return ()
        found: dict[tuple[str, type[Any]], None] = {}
        for child in self.subplan(completion, object_type).fields:
            batch = child.batch
            if not isinstance(batch, Related) or not hasattr(batch.loader, "join"):
                continue
            columns = reads.columns.get(batch.key_field)
            if columns is not None and len(columns) == 1:
                found[(columns[0], batch.loader)] = None
        return tuple(found)

    def row_columns(self, completion: Completion, found: set[str]) -> bool:
        """Adds to ``found`` the columns that the row-backed objects (schema/rows.py)
        first met under ``completion`` read: a plain field its declared columns, a
        batched one its key's. Objects on the way (a connection, its edges, its page
        info) are walked through, and add CURSORS when they make cursors. False when a
        field reads what cannot be told (a resolver, a computed field that declares
        nothing, an abstract type)."""
        while completion.kind == LIST:
            completion = completion.inner  # type: ignore[assignment]
        if completion.kind == LEAF:
            return True
        if completion.kind == ABSTRACT:
            return False
        object_type = completion.type
        plan = self.subplan(completion, object_type)
        origin = getattr((object_type.extensions or {}).get("strawberry-definition"),
                         "origin", None)
        reads = getattr(origin, "_reads", None)
        if reads is None:  # a connection, its edges, its page info
            if any(field.field_name in _CURSORED for field in plan.fields):
                found.add(CURSORS)
            return all(self.row_columns(field.completion, found) for field in plan.fields)
        for field in plan.fields:
            if field.field_name.startswith("__"):
                continue  # __typename
            if field.getter is not None:
                name = _python_name(field.definition)
            elif field.batch is not None:
                name = getattr(field.batch, "key_field", None)
            else:
                return False
            columns = reads.columns.get(name)
            if columns is None:
                return False
            found.update(columns)
        return True

    def complete_batch(self, field: FieldPlan, entries: list[Entry], values: Any,
                       following: dict[int, tuple[SelectionPlan, list[Entry]]]) -> None:
        if isinstance(values, BaseException):
            if not isinstance(values, Exception):
                raise values  # cancellation and exits are not field errors
            for entry in entries:
                self.field_error(values, field, entry)
            return
        completion = field.completion
        if completion.kind == OBJECT:
            plan = self.subplan(completion, completion.type)
            if plan.complete_leaves is not None:
                self.complete_leaf_objects(field, plan.complete_leaves, entries, values,
                                           following)
                return
        for entry, value in zip(entries, values, strict=True):
            self.complete_field(field, entry, value, following)

    def complete_leaf_objects(self, field: FieldPlan,
                              complete_leaves: Callable[[Any], dict[str, Any] | None],
                              entries: list[Entry], values: list[Any],
                              following: dict[int, tuple[SelectionPlan, list[Entry]]]
                              ) -> None:
        """A to-one field of a level whose object reads only leaves (each deal's phase
        name): each object completed where it is met, by the selection's function, not
        made an entry of the next level. An object shared by several sources (a batch
        makes one per distinct key) is completed once and copied. Anything else (a
        null, an error, another type, a leaf that fails) takes the general path."""
        completion = field.completion
        checked = completion.checked
        name = field.name
        done: dict[int, dict[str, Any]] = {}
        for entry, value in zip(entries, values, strict=True):
            if (type(value) not in checked or getattr(value, CAST, None) is not None) and \
                    not _is_plain(completion, value):
                self.complete_field(field, entry, value, following)
                continue
            result = done.get(id(value))
            if result is None:
                result = complete_leaves(value)
                if result is None:
                    self.complete_field(field, entry, value, following)
                    continue
                done[id(value)] = result
            else:
                result = result.copy()
            entry.result[name] = result

    def read_leaves(self, field: FieldPlan, getter: Callable[[Any], Any], entries: list[Entry],
                    following: dict[int, tuple[SelectionPlan, list[Entry]]]) -> None:
        """The most common field of all: an attribute of the source, coerced. Nulls and
        errors take the general path, which knows about positions and nullability."""
        name = field.name
        coerce = field.completion.coerce
        assert coerce is not None
        for entry in entries:
            try:
                value = getter(entry.source)
                if value is None or isinstance(value, Exception):
                    self.complete_field(field, entry, value, following)
                    continue
                coerced = coerce(value)
                if coerced is Undefined or coerced is None:
                    raise _leaf_error(field.completion, value)
            except Exception as error:  # a field error
                self.field_error(error, field, entry)
                continue
            entry.result[name] = coerced

    def arguments(self, field: FieldPlan) -> dict[str, Any]:
        if field.static_args is not None:
            return field.static_args
        key = id(field)
        args = self.args.get(key)
        if args is None:
            details = field.field_details[0]
            args = get_argument_values(field.definition, details.node, self.variables,
                                       details.fragment_variable_values, self.hide_suggestions)
            self.args[key] = args
        return args

    def converted(self, field: FieldPlan, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments as the resolver takes them (Python names, input objects)."""
        key = -id(field)
        converted = self.args.get(key)
        if converted is None:
            strawberry_schema = self.executor.schema._strawberry_schema  # type: ignore[attr-defined]
            strawberry_field = field.direct.field  # type: ignore[union-attr]
            converted = convert_arguments(
                args, strawberry_field.arguments,
                scalar_registry=strawberry_schema.schema_converter.scalar_registry,
                config=strawberry_schema.config)
            self.args[key] = converted
        return converted

    def field_error(self, error: Exception, field: FieldPlan, entry: Entry) -> None:
        path = Path(entry.position.path, field.name, field.parent_type.name)
        position = Position(entry.result, field.name, field.completion.nullable,
                            entry.position, path)
        self.fail(error, field.nodes, path, position)

    def fail(self, raw: Exception, nodes: list[FieldNode], path: Path,
             position: Position | None) -> None:
        error = located_error(raw, nodes, path.as_list())
        while position is not None and not position.nullable:
            position = position.parent
        if position is None or position.container is None:
            self.data_lost = True
            self.errors.add(error, None)
            return
        position.container[position.key] = None
        self.errors.add(error, position.path)

    def complete_field(self, field: FieldPlan, entry: Entry, value: Any,
                       following: dict[int, tuple[SelectionPlan, list[Entry]]]) -> None:
        completion = field.completion
        if completion.kind == LEAF and value is not None and not isinstance(value, Exception):
            # The common case, without positions or paths.
            try:
                coerced = completion.coerce(value)  # type: ignore[misc]
                if coerced is Undefined or coerced is None:
                    raise _leaf_error(completion, value)
            except Exception as error:  # a field error
                self.field_error(error, field, entry)
                return
            entry.result[field.name] = coerced
            return
        path = Path(entry.position.path, field.name, field.parent_type.name)
        position = Position(entry.result, field.name, completion.nullable, entry.position,
                            path)
        self.complete(completion, value, position, field, following)

    def complete(self, completion: Completion, value: Any, position: Position,
                 field: FieldPlan, following: dict[int, tuple[SelectionPlan, list[Entry]]]
                 ) -> None:
        """Write the completed ``value`` at ``position``; a field error nulls upwards."""
        try:
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                if not completion.nullable:
                    raise TypeError("Cannot return null for non-nullable field "
                                    f"{field.parent_type.name}.{field.field_name}.")
                position.container[position.key] = None
                return
            kind = completion.kind
            if kind == LEAF:
                coerced = completion.coerce(value)  # type: ignore[misc]
                if coerced is Undefined or coerced is None:
                    raise _leaf_error(completion, value)
                position.container[position.key] = coerced
            elif kind == LIST:
                if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                    raise GraphQLError(
                        "Expected Iterable, but did not find one for field"
                        f" '{field.parent_type.name}.{field.field_name}'.")
                items: list[Any] = []
                position.container[position.key] = items
                inner = completion.inner
                assert inner is not None
                if inner.kind == OBJECT:
                    self.complete_objects(inner, value, items, position, field, following)
                    return
                for index, item in enumerate(value):
                    items.append(None)
                    self.complete(inner, item, Position(
                        items, index, inner.nullable, position, Path(position.path, index, None)),
                        field, following)
            else:
                object_type = (self.runtime_type(completion, value, position, field)
                               if kind == ABSTRACT else completion.type)
                is_type_of = object_type.is_type_of
                if is_type_of is not None and not is_type_of(value, None):
                    raise GraphQLError(
                        f"Expected value of type '{object_type.name}' but got: "
                        f"{inspect(value)}.", field.nodes)
                plan = self.subplan(completion, object_type)
                result = dict.fromkeys(plan.names)
                position.container[position.key] = result
                bucket = following.get(id(plan))
                if bucket is None:
                    bucket = following[id(plan)] = (plan, [])
                bucket[1].append(Entry(value, result, position))
        except Exception as error:  # a field error
            self.fail(error, field.nodes, position.path, position)  # type: ignore[arg-type]

    def complete_objects(self, inner: Completion, values: Iterable[Any], items: list[Any],
                         position: Position, field: FieldPlan,
                         following: dict[int, tuple[SelectionPlan, list[Entry]]]) -> None:
        """A list of objects of one type (a page's nodes): the plan, its bucket and the
        type check are looked up once for the list, not once per item. Anything but a
        plain object of the type (a null, another type) is completed one by one."""
        object_type = inner.type
        plan = self.subplan(inner, object_type)
        names = plan.names
        complete_leaves = plan.complete_leaves
        checked = inner.checked
        entries: list[Any] | None = None
        nullable = inner.nullable
        # Nodes not made yet, of a type whose objects hold only their row when made:
        # those of leaves only are completed from the rows; a row that leaves a null or
        # an error to place is made a node and completed as any other.
        from_rows: list[dict[str, Any] | None] | None = None  # each row's result
        if isinstance(values, RowList):  # a page's nodes, a plan's rows
            convert = values.convert
            complete_row = plan.complete_row if _makes_from_row(convert, object_type) \
                else None
            if complete_row is not None:
                values = values.rows
                from_rows = [complete_row(row) for row in values]
                if None not in from_rows:  # the common case: every row completed
                    items.extend(from_rows)
                    return
            else:
                values = list(values)  # the objects made
        for index, item in enumerate(values):
            if from_rows is not None:
                result = from_rows[index]
                if result is not None:
                    items.append(result)
                    continue
                item = convert(item)
            if (type(item) not in checked or getattr(item, CAST, None) is not None) and \
                    not _is_plain(inner, item):
                items.append(None)
                self.complete(inner, item, Position(
                    items, index, nullable, position, Path(position.path, index, None)),
                    field, following)
                continue
            if complete_leaves is not None:
                result = complete_leaves(item)
                if result is not None:
                    items.append(result)
                    continue
            # Fields to resolve at the next level (or a leaf that is null or failed, which
            # the general path places and reports).
            result = dict.fromkeys(names)
            items.append(result)
            if entries is None:
                bucket = following.get(id(plan))
                if bucket is None:
                    bucket = following[id(plan)] = (plan, [])
                entries = bucket[1]
            entries.append(Item(item, result, items, index, nullable, position))

    def runtime_type(self, completion: Completion, value: Any, position: Position,
                     field: FieldPlan) -> GraphQLObjectType:
        executor = self.executor
        abstract = completion.type
        info = executor.build_resolve_info(field.definition, field.nodes, field.parent_type,
                                           position.path)  # type: ignore[arg-type]
        resolve_type = abstract.resolve_type or executor.type_resolver
        name = resolve_type(value, info, abstract)
        if _is_awaitable(name):
            raise TypeError(f"the type of {abstract.name} must be resolved synchronously")
        return executor.ensure_valid_runtime_type(
            name, abstract, completion.field_details, info, value)


def _is_plain(completion: Completion, value: Any) -> bool:
    """Whether ``value`` is completed as an object of ``completion``'s type where it is
    met: not a null or an error, and passing the type's check. Its class is remembered
    (``checked``) unless it was cast to a type (strawberry.cast): Strawberry's check of
    other objects depends on their class alone. The callers ask only of a value whose
    class is not remembered yet."""
    if value is None or isinstance(value, Exception):
        return False
    is_type_of = completion.type.is_type_of
    if is_type_of is not None and not is_type_of(value, None):
        return False
    if getattr(value, CAST, None) is None:
        completion.checked.add(type(value))
    return True


def _leaves_function(leaves: list[Leaf]) -> Callable[[Any], dict[str, Any] | None]:
    """A function of an object giving its result, its leaves read and coerced; None
    when one is an error, fails to coerce or is null where it may not be: the general
    path then completes the object, and places and reports the error.

    Its code is written for the selection, one statement per leaf, as graphql-jit
    does: a loop over the leaves cost more than reading them. When every leaf is read
    from a row (schema/rows.py), an object that holds only its row (nothing read from
    it yet: every object of a fresh page) is read from the row directly."""
    names = {"Undefined": Undefined, "Exception": Exception, "isinstance": isinstance}
    for index, (name, getter, coerce, _nullable) in enumerate(leaves):
        names.update({f"k{index}": name, f"g{index}": getter, f"c{index}": coerce,
                      f"r{index}": getattr(getter, "read", None),
                      f"t{index}": _exact_input(coerce)})
    by_getter = _leaves_code("from_getters", [], [f"g{i}(item)" for i in range(len(leaves))],
                             leaves)
    if not all(names[f"r{index}"] is not None for index in range(len(leaves))):
        exec(by_getter, names)  # our own code, made from the plan
        return names["from_getters"]  # type: ignore[no-any-return]
    # A plain read of the row (a column, a line's key) is written as it is: no call.
    reads = [getattr(getter, "inline", None) or f"r{i}(row)"
             for i, (_name, getter, _coerce, _nullable) in enumerate(leaves)]
    from_object = _leaves_code(
        "complete",
        ["        values = item.__dict__",
         "        row = values.get('_row') if len(values) == 1 else None",
         "        if row is None:",
         "            return from_getters(item)"], reads, leaves)
    from_row = _leaves_code("from_row", ["        row = item"], reads, leaves)
    exec(by_getter + from_object + from_row, names)  # our own code, made from the plan
    complete = names["complete"]
    complete.from_row = names["from_row"]  # a row, not an object: SelectionPlan.complete_row
    return complete  # type: ignore[no-any-return]


def _leaves_code(function: str, prologue: list[str], reads: list[str], leaves: list[Leaf]
                 ) -> str:
    lines = [f"def {function}(item):", "    try:", *prologue]
    for index, ((_name, _getter, coerce, nullable), read) in enumerate(
            zip(leaves, reads, strict=True)):
        value = f"v{index}"
        # The common case first, with one test: a value of the very type the coercion
        # takes, whose output is never null (a str is its own output: no call).
        test = "if"
        lines.append(f"        {value} = {read}")
        if coerce in _KEEP_STR:
            lines += [f"        if type({value}) is str:", "            pass"]
            test = "elif"
        elif _exact_input(coerce) is not None:
            lines += [f"        if type({value}) is t{index}:",
                      f"            {value} = c{index}({value})"]
            test = "elif"
        lines += [f"        {test} {value} is None:",
                  "            pass" if nullable else "            return None",
                  f"        elif isinstance({value}, Exception):",
                  "            return None",
                  "        else:",
                  f"            {value} = c{index}({value})",
                  f"            if {value} is None or {value} is Undefined:",
                  "                return None"]
    lines += ["    except Exception:  # reported by the general path, with its position",
              "        return None",
              "    return {" + ", ".join(f"k{i}: v{i}" for i in range(len(leaves))) + "}",
              ""]
    return "\n".join(lines)


# The fields of a connection that read its rows' sort keys: its page info makes its
# cursors when it is made (schema/relay.py).
_CURSORED = frozenset({"cursor", "pageInfo"})

# String's and ID's output coercions, which return a str as it is.
_KEEP_STR = frozenset({GraphQLString.coerce_output_value, GraphQLID.coerce_output_value})

# Output coercions that turn a value of exactly this type into an output that is never
# null (they may raise, which the general path reports): the rest of the built-in
# scalars', and ours (schema/scalars.py).
_EXACT_INPUTS: dict[Any, type] = {
    GraphQLInt.coerce_output_value: int, GraphQLFloat.coerce_output_value: float,
    GraphQLBoolean.coerce_output_value: bool, **EXACT_OUTPUT_INPUTS}


def _exact_input(coerce: Callable[[Any], Any]) -> type | None:
    try:
        return _EXACT_INPUTS.get(coerce)
    except TypeError:  # a coercion that cannot be hashed: no fast path
        return None


def _makes_from_row(convert: Callable[[Any], Any], object_type: GraphQLObjectType) -> bool:
    """Whether ``convert`` makes an object of ``object_type`` holding only its row."""
    if isinstance(convert, FromRow):
        convert = convert.made
    origin = getattr((object_type.extensions or {}).get("strawberry-definition"), "origin",
                     None)
    return getattr(convert, "__func__", None) in ROW_MAKERS and \
        getattr(convert, "__self__", None) is origin


def _python_name(definition: GraphQLField) -> str | None:
    field = (definition.extensions or {}).get("strawberry-definition")
    return getattr(field, "python_name", None)


def _completion(type_: Any, field_details: FieldDetailsList) -> Completion:
    nullable = True
    if is_non_null_type(type_):
        nullable = False
        type_ = type_.of_type
    if is_list_type(type_):
        return Completion(LIST, type_, nullable, field_details,
                          _completion(type_.of_type, field_details))
    if is_leaf_type(type_):
        return Completion(LEAF, type_, nullable, field_details)
    if is_abstract_type(type_):
        return Completion(ABSTRACT, type_, nullable, field_details)
    return Completion(OBJECT, type_, nullable, field_details)


def _attribute_getter(resolve: Callable[..., Any], definition: GraphQLField,
                      parent_type: GraphQLObjectType) -> Callable[[Any], Any] | None:
    """A field without resolver reads an attribute of its source, as Strawberry's basic
    fields do (through StrawberryConfig.default_resolver, getattr here)."""
    if not getattr(resolve, "_is_default", False):
        return None
    field = (definition.extensions or {}).get("strawberry-definition")
    if field is None or field.base_resolver or field.default_resolver is not getattr:
        return None
    name = field.python_name
    owner = getattr((parent_type.extensions or {}).get("strawberry-definition"), "origin", None)
    special = getattr(owner, "_compiled_reads", {}).get(name)
    if special is not None:  # e.g. a connection's nodes, maybe not made yet (RowNodes)
        return special  # type: ignore[no-any-return]
    reads = getattr(owner, "_reads", {})
    read = reads.get(name)
    return attrgetter(name) if read is None else \
        _row_getter(name, read, getattr(reads, "inline", {}).get(name))


def _row_getter(name: str, read: Callable[[Any], Any], inline: str | None = None
                ) -> Callable[[Any], Any]:
    """The attribute of an object that keeps its row (schema/rows.py RowBacked), read
    from the row without the fall-through to ``__getattr__``: what getattr returns.
    ``inline``: the read as an expression of ``row``, where it is a plain one."""

    def get(source: Any) -> Any:
        try:
            values = source.__dict__
            if name in values:
                return values[name]
            row = values["_row"]
        except (AttributeError, KeyError):  # not made from a row
            return getattr(source, name)
        if row is None:
            return getattr(source, name)
        return read(row)

    get.read = read  # type: ignore[attr-defined]
    get.inline = inline  # type: ignore[attr-defined]
    return get


def _static_args(definition: GraphQLField, field_details: FieldDetailsList
                 ) -> dict[str, Any] | None:
    node = field_details[0].node
    if not definition.args and not node.arguments:
        return {}
    return None  # computed once per run (they may name variables or fail)


def _leaf_error(completion: Completion, value: Any) -> TypeError:
    leaf: GraphQLLeafType = completion.type
    return TypeError(f"Expected `{inspect(leaf)}.coerce_output_value({inspect(value)})` to "
                     "return non-nullable value, returned: None")


def _is_awaitable(value: Any) -> bool:
    return hasattr(value, "__await__")


def _errors(errors: list[GraphQLError]) -> list[bytes]:
    # Sibling errors may be collected in another order; the set of them must match.
    return sorted(orjson.dumps(error.formatted, option=orjson.OPT_SORT_KEYS)
                  for error in errors)


def _variable_directives(executor: Executor) -> bool:
    """Whether a directive of the operation or its fragments takes a variable."""
    found = _VariableDirectives()
    visit(executor.operation, found)
    for fragment in executor.fragment_definitions.values():
        visit(fragment, found)
    return found.found


class _VariableDirectives(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_directive(self, node: Any, *_args: Any) -> None:
        if any(isinstance(argument.value, VariableNode) for argument in node.arguments or ()):
            self.found = True
