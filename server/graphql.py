"""The executable schema: caches, limits, per-operation loaders and error codes.

One pipeline serves HTTP and WebSocket alike, so both see the same limits and the
same error codes.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import suppress
from functools import lru_cache, partial
from typing import Any, cast

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, GraphQLObjectType, GraphQLSyntaxError, parse
from graphql.execution.executor import CollectedErrors
from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    StreamResultContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import (
    StrawberryGraphQLCoreExecutionContext,
    SubscriptionResult,
    validate_document,
)
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import StreamExecutionResult

from loaders.errors import ApiError
from schema.root import build_schema
from server import faults
from server.access import Access, Confirmation, error_for
from server.compiled import Compiler
from server.context import AFTER_RESPONSE
from server.cost import CostLimits
from server.limits import alias_limit, depth_limit
from server.metrics import Metrics, OperationTelemetry
from server.settings import Settings

logger = logging.getLogger("crmgraph.errors")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
INTERNAL = "INTERNAL_SERVER_ERROR"
DOCUMENT_CACHE_SIZE = 1_000


class OperationContext(SchemaExtension):
    """Each operation gets its own loaders, also when a WebSocket runs many at once;
    and its limits: the most tokens its document may have and our validation rules.

    One hook doing what Strawberry's MaxTokensLimiter and AddValidationRules do in
    theirs: each extension costs every operation an instance and a context manager
    per hook, whether it has anything to do or not.
    """

    def __init__(self, max_tokens: int, rules: tuple[Any, ...]) -> None:
        self.max_tokens = max_tokens
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        if hasattr(context, "for_operation"):
            execution.context = context.for_operation()
        execution.parse_options["max_tokens"] = self.max_tokens
        execution.validation_rules = execution.validation_rules + self.rules
        yield
        # graphql-core's executor refers to itself, and so to this context: its
        # loaders (every row, page and object of the operation) are let go here, not
        # left to the cyclic collector; over HTTP once the response is sent (freeing a
        # page of plans' thousands of objects took 2% of its CPU).
        renew = getattr(execution.context, "renew_loaders", None)
        if renew is not None:
            later = AFTER_RESPONSE.get()
            if later is None:
                renew()
            else:
                later.append(renew)


class DocumentCache(SchemaExtension):
    """Strawberry's ParserCache and ValidationCache in one extension, except for
    documents that do not parse.

    ParserCache parses in its hook, outside Strawberry's handling of parse errors, so
    a syntax error (too many tokens, nested too deeply) would escape the operation:
    left uncoded over HTTP and failing the operation over WebSocket. Such a document
    is left to Strawberry's own parse, which reports the same error as a result.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with suppress(GraphQLError, RecursionError):
            context.graphql_document = _cached_parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        schema = context.schema
        context.pre_execution_errors = schema.validated(
            schema._schema, context.graphql_document, context.validation_rules)
        yield


class ValidationCache:
    """One schema's validation errors by document and rules, the document known by
    identity: the parse cache gives the same document for the same text. Strawberry's
    ValidationCache (an lru_cache) hashed the whole document at every request, each
    node and its location: 6 us for a small query, 13 for the bench's dashboard.

    Each schema has its own (CrmSchema.validated): one cache for the process held every
    schema its entries were made with, as Strawberry's does. A process that builds many
    (the test suite builds an app per test) kept dozens alive, a few million objects
    that every older collection walked."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._known: dict[int, tuple[Any, tuple[Any, ...], list[GraphQLError]]] = {}

    def __call__(self, schema: Any, document: Any, rules: tuple[Any, ...]
                 ) -> list[GraphQLError]:
        known = self._known.get(id(document))
        if known is not None and known[0] is document and known[1] == rules:
            return known[2]
        errors = validate_document(schema, document, rules)
        if len(self._known) >= self.size:
            del self._known[next(iter(self._known))]  # the oldest
        # The document is kept with its errors: its id stays its own while it is here.
        self._known[id(document)] = (document, rules, errors)
        return errors


# Shared by every request and schema, as ParserCache's is: a document is the schema's
# to validate, not to parse.
_cached_parse = lru_cache(maxsize=DOCUMENT_CACHE_SIZE)(parse)


class ErrorCodes(SchemaExtension):
    """Every error leaves with ``extensions.code``; unexpected ones leave masked.

    A resolver's ApiError keeps its message and code. Anything else raised while
    executing is a bug: it is logged with the request id and the client gets
    INTERNAL_SERVER_ERROR with that id, never a stack trace or SQL.

    HTTP results are coded when the operation ends. WebSocket results are sent
    while the operation is still open, so each is coded before it is sent.
    """

    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": VALIDATION_FAILED}

    def on_operation(self) -> Iterator[None]:
        yield
        self._code(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        self._code(result)
        yield

    def _code(self, result: object) -> None:
        # Coding is idempotent: a result coded as it was streamed passes unchanged
        # when the operation ends.
        if isinstance(result, (ExecutionResult, GraphQLExecutionResult)) and result.errors:
            result.errors = [coded(error, self.execution_context) for error in result.errors]


def coded(error: GraphQLError, execution: ExecutionContext) -> GraphQLError:
    """``error`` with its ``extensions.code``; a bug's masked and logged."""
    original = error.original_error
    if isinstance(original, ApiError):
        return _with_code(error, original.code, original.message)
    if (error.extensions or {}).get("code"):
        return error
    if isinstance(original, RecursionError):
        return _with_code(error, QUERY_TOO_COMPLEX, "the document is nested too deeply")
    if isinstance(error, GraphQLSyntaxError):
        too_big = "tokens" in error.message or "nested too deeply" in error.message
        return _with_code(error, QUERY_TOO_COMPLEX if too_big else PARSE_FAILED,
                          error.message)
    if error.path is None and (original is None or isinstance(original, (
            GraphQLError, CannotGetOperationTypeError, InvalidOperationTypeError))):
        # Before execution: variables that do not fit their types (graphql-core
        # wraps the scalar's own GraphQLError), an unknown operation name, an
        # operation the transport does not run. The message says which.
        return _with_code(error, BAD_USER_INPUT, error.message)
    # A database away or a transaction PostgreSQL rolled back is no bug: the client
    # hears a code and whether it may send the request again (server/faults.py).
    request_id = getattr(execution.context, "request_id", None)
    fault = faults.coded(error, request_id)
    if fault is not None:
        return fault
    logger.error(
        "unexpected error in %s at %s (request %s): %s",
        execution.operation_name or "anonymous operation",
        ".".join(str(p) for p in error.path or ()), request_id, error.message,
        exc_info=error.original_error or error,
    )
    return GraphQLError(
        "Internal server error", nodes=error.nodes, path=error.path,
        extensions={"code": INTERNAL, "requestId": request_id},
    )


def _with_code(error: GraphQLError, code: str, message: str) -> GraphQLError:
    return GraphQLError(
        message, nodes=error.nodes, path=error.path,
        extensions={**(error.extensions or {}), "code": code},
    )


class CrmExecutor(StrawberryGraphQLCoreExecutionContext):
    """Queries run through their compiled plans (server/compiled.py) when the schema
    has a compiler; everything else through graphql-core.

    graphql-core 3.3 gives a subscription's per-event executors one shared memo of
    collected sub-fields, keyed by the identity of lists made anew for every event: it
    grows for as long as the subscription lives (about 4 KB an event, measured). Each
    event gets a memo of its own, dropped with it."""

    compiler: Compiler | None = None

    def execute_collected_root_fields(self, root_type: GraphQLObjectType, root_value: Any,
                                      grouped_field_set: Any, serially: bool,
                                      new_defer_usages: Any) -> Any:
        compiler = self.compiler
        if compiler is not None and not serially and not new_defer_usages and \
                compiler.compiles(self):
            result = compiler.execute(self, root_type, root_value, grouped_field_set)
        else:
            result = super().execute_collected_root_fields(
                root_type, root_value, grouped_field_set, serially, new_defer_usages)
        context = self.context_value
        confirmation = getattr(context, "confirmation", None)
        if confirmation is None:
            return result
        context.confirmation = None
        return self._confirmed(result, confirmation, root_type, root_value, grouped_field_set,
                               serially, new_defer_usages)

    async def _confirmed(self, result: Any, confirmation: Confirmation, *again: Any) -> Any:
        """The root fields' data once the viewer they ran as proves to be the viewer
        as it is now (server/access.py Confirmation); run again as the viewer it now
        is when it changed meanwhile; an error instead when it may no longer ask."""
        failed: GraphQLError | None = None
        try:
            data = await result if self.is_awaitable(result) else result
        except GraphQLError as error:  # the whole operation's: told only to a viewer
            data, failed = None, error  # that may still ask
        except BaseException:
            confirmation.cancel()
            raise
        viewer, problem = await confirmation.settle()
        if viewer == confirmation.viewer:
            if failed is not None:
                raise failed
            return data
        self.collected_errors = CollectedErrors()  # of a run that does not count
        if problem is not None:
            raise error_for(problem)
        context = self.context_value
        context.viewer = viewer
        context.renew_loaders()
        result = self.execute_collected_root_fields(*again)
        return await result if self.is_awaitable(result) else result

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor


# (extension class, hook name) -> (context manager factory taking the extension, is
# async), or None where the class leaves the hook as SchemaExtension has it.
_HOOKS: dict[tuple[type, str], tuple[Callable[..., Any], bool] | None] = {}
_NO_HOOK = object()


def _hook_factory(extension_class: type, name: str) -> Any:
    """What Strawberry's ExtensionContextManagerBase.get_hook makes of a hook, once per
    class instead of once per operation: it decorates the hook anew for every
    operation (contextmanager over a bound method, functools.wraps included), for
    every extension and every step. Hooks that are plain functions are left to it."""
    key = (extension_class, name)
    known = _HOOKS.get(key, _NO_HOOK)
    if known is not _NO_HOOK:
        return known
    hook = getattr(extension_class, name)
    factory: tuple[Callable[..., Any], bool] | None
    if hook is getattr(SchemaExtension, name):
        factory = None
    elif inspect.isgeneratorfunction(hook):
        factory = (contextlib.contextmanager(hook), False)
    elif inspect.isasyncgenfunction(hook):
        factory = (contextlib.asynccontextmanager(hook), True)
    else:
        return _NO_HOOK  # not cached: Strawberry wraps it per extension
    _HOOKS[key] = factory
    return factory


class _CachedHooks(ExtensionContextManagerBase):
    """Strawberry's context manager for one step, its hooks made from cached factories;
    entered and exited by Strawberry's own code, so hooks run exactly as before."""

    def __init__(self, extensions: list[SchemaExtension], *args: Any) -> None:
        super().__init__([], *args)
        hooks = self.hooks
        for extension in extensions:
            factory = _hook_factory(type(extension), self.HOOK_NAME)
            if factory is None:
                continue
            if factory is _NO_HOOK:
                wrapped = self.get_hook(extension)
                if wrapped is not None:
                    hooks.append(wrapped)
                continue
            hooks.append(WrappedHook(extension=extension, hook=partial(factory[0], extension),
                                     is_async=factory[1]))


# (extension classes, hook name) -> each extension's hook for the step, in order, as
# (its index among the extensions, the hook's generator function, is async); None when
# one of them is a hook Strawberry wraps (a plain function): its way then.
_STEP_HOOKS: dict[tuple[tuple[type, ...], str],
                  tuple[tuple[int, Callable[..., Any], bool], ...] | None] = {}


def _step_hooks(classes: tuple[type, ...], name: str
                ) -> tuple[tuple[int, Callable[..., Any], bool], ...] | None:
    key = (classes, name)
    try:
        return _STEP_HOOKS[key]
    except KeyError:
        pass
    hooks: list[tuple[int, Callable[..., Any], bool]] | None = []
    for index, extension_class in enumerate(classes):
        factory = _hook_factory(extension_class, name)
        if factory is None:
            continue
        if factory is _NO_HOOK:
            hooks = None
            break
        hooks.append((index, getattr(extension_class, name), factory[1]))  # type: ignore[union-attr]
    known = _STEP_HOOKS[key] = None if hooks is None else tuple(hooks)
    return known


class _Step(ExtensionContextManagerBase):
    """One step of an operation (on_operation, on_parse, on_validate, on_execute): its
    extensions' hooks entered in order and left in reverse, as Strawberry's context
    managers do, but driving each hook's generator itself. Strawberry's wraps every
    hook in a contextlib manager and the step in an exit stack, anew for each
    operation: ~65 us of a small query's ~1.2 ms of CPU went to that machinery alone
    (bench/README.md).

    Leaving follows Strawberry's exit stack of generator context managers: an
    exception goes into each hook in turn at its ``yield``; a hook that ends without
    raising it hides it from the hooks after it (not from the operation: Strawberry's
    steps never swallow one); one that raises another passes that one on, and the
    step raises it. A hook that fails as it is entered leaves the hooks entered before
    it unfinished, as an exit stack that is never exited does.
    """

    __slots__ = ("_lean", "_running")

    def __init__(self, extensions: list[SchemaExtension]) -> None:
        hooks = _step_hooks(tuple(type(extension) for extension in extensions),
                            self.HOOK_NAME)
        if hooks is None:
            super().__init__(extensions)
            self._lean: list[tuple[Any, bool]] | None = None
        else:
            self.hooks = []
            self._lean = [(function(extensions[index]), is_async)
                          for index, function, is_async in hooks]
        self._running: list[tuple[Any, bool]] = []

    def __enter__(self) -> None:
        if self._lean is None:
            return super().__enter__()
        for generator, is_async in self._lean:
            if is_async:
                raise RuntimeError(f"SchemaExtension hook {generator.__qualname__} "
                                   "failed to complete synchronously.")
        for generator, is_async in self._lean:
            _enter(generator)
            self._running.append((generator, is_async))
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool | None:
        if self._lean is None:
            return super().__exit__(exc_type, exc, tb)  # type: ignore[func-returns-value]
        pending, raised = exc, False
        handled = sys.exc_info()[1]
        running = self._running
        while running:
            generator, _is_async = running.pop()
            try:
                if _leave(generator, pending, tb):
                    pending, raised = None, False
            except BaseException as new:  # passed on to the next hook, as ExitStack does
                _chain(new, pending, handled)
                pending, raised = new, True
        if raised:
            raise pending  # type: ignore[misc]
        return None  # as Strawberry's: a hook that swallows an exception hides it from
        # the hooks left after it, never from the operation

    async def __aenter__(self) -> None:
        if self._lean is None:
            return await super().__aenter__()
        for generator, is_async in self._lean:
            if is_async:
                await _aenter(generator)
            else:
                _enter(generator)
            self._running.append((generator, is_async))
        return None

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any
                        ) -> bool | None:
        if self._lean is None:
            return await super().__aexit__(exc_type, exc, tb)  # type: ignore[func-returns-value]
        pending, raised = exc, False
        handled = sys.exc_info()[1]
        running = self._running
        while running:
            generator, is_async = running.pop()
            try:
                if await _aleave(generator, pending, tb) if is_async else \
                        _leave(generator, pending, tb):
                    pending, raised = None, False
            except BaseException as new:  # passed on to the next hook, as ExitStack does
                _chain(new, pending, handled)
                pending, raised = new, True
        if raised:
            raise pending  # type: ignore[misc]
        return None  # as Strawberry's: a hook that swallows an exception hides it from
        # the hooks left after it, never from the operation


def _enter(generator: Any) -> None:
    try:
        next(generator)
    except StopIteration:
        raise RuntimeError("generator didn't yield") from None


async def _aenter(generator: Any) -> None:
    try:
        await generator.__anext__()
    except StopAsyncIteration:
        raise RuntimeError("generator didn't yield") from None


def _leave(generator: Any, exc: BaseException | None, tb: Any) -> bool:
    """contextlib's _GeneratorContextManager.__exit__: True when the hook swallowed
    ``exc``; raises what the hook raised instead."""
    try:
        if exc is None:
            next(generator)
        else:
            generator.throw(exc)
    except StopIteration as stop:
        return exc is not None and stop is not exc
    except BaseException as error:
        return _passed_on(error, exc, tb)
    raise RuntimeError("generator didn't stop" if exc is None else
                       "generator didn't stop after throw()")


async def _aleave(generator: Any, exc: BaseException | None, tb: Any) -> bool:
    """contextlib's _AsyncGeneratorContextManager.__aexit__, as _leave."""
    try:
        if exc is None:
            await generator.__anext__()
        else:
            await generator.athrow(exc)
    except StopAsyncIteration as stop:
        return exc is not None and stop is not exc
    except BaseException as error:
        return _passed_on(error, exc, tb)
    raise RuntimeError("generator didn't stop" if exc is None else
                       "generator didn't stop after athrow()")


def _passed_on(error: BaseException, exc: BaseException | None, tb: Any) -> bool:
    """False when a hook told of ``exc`` raised it again (or the RuntimeError a
    generator makes of a StopIteration thrown in, PEP 479): it goes on as it was.
    Anything else the hook raised is raised."""
    if exc is not None and (error is exc or (
            isinstance(exc, (StopIteration, StopAsyncIteration))
            and isinstance(error, RuntimeError) and error.__cause__ is exc)):
        exc.__traceback__ = tb
        return False
    raise error


def _chain(new: BaseException, old: BaseException | None,
           handled: BaseException | None) -> None:
    """ExitStack's _fix_exception_context: ``new``, raised by a hook while ``old`` was
    on its way out, has ``old`` in its context chain, where the chain reaches the
    exception the caller was handling (``handled``)."""
    while True:
        context = new.__context__
        if context is None or context is old:
            return
        if context is handled:
            break
        new = context
    new.__context__ = old


class _OperationHooks(_Step, OperationContextManager):
    pass


class _ValidationHooks(_Step, ValidationContextManager):
    pass


class _ParsingHooks(_Step, ParsingContextManager):
    pass


class _ExecutingHooks(_Step, ExecutingContextManager):
    pass


class _StreamResultHooks(_CachedHooks, StreamResultContextManager):
    pass


class ExtensionsRunner(SchemaExtensionsRunner):
    """Strawberry's runner, with hooks from cached factories, and get_results asked
    only of the extensions that have results (the others add an empty dict)."""

    def operation(self) -> OperationContextManager:
        return _OperationHooks(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _ValidationHooks(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _ParsingHooks(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _ExecutingHooks(self.extensions)

    def on_stream_result(self, result: Any) -> StreamResultContextManager:
        return _StreamResultHooks(self.extensions, result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        default = SchemaExtension.get_results
        for extension in self.extensions:
            if type(extension).get_results is not default:
                results = extension.get_results()
                data.update(await results if inspect.isawaitable(results) else results)
        data.update(ctx.extensions_results)
        return data


class CrmSchema(strawberry.federation.Schema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.validated = ValidationCache(DOCUMENT_CACHE_SIZE)  # by DocumentCache

    def create_extensions_runner(self, execution_context: ExecutionContext,
                                 extensions: list[SchemaExtension]) -> SchemaExtensionsRunner:
        return ExtensionsRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        # ErrorCodes codes and logs what matters, with the request id, as the operation
        # ends; client mistakes are not server errors and are not logged. An exception
        # that escaped an extension's hook ends the operation before that: Strawberry
        # makes it an error of its text alone, coded (and a bug's masked) here.
        if execution_context is not None:
            errors[:] = [coded(error, execution_context) for error in errors]

    async def subscribe(
        self, query: str | None, variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None, root_value: Any | None = None,
        operation_name: str | None = None, operation_extensions: dict[str, Any] | None = None,
    ) -> SubscriptionResult:
        # The legacy graphql-ws protocol runs every operation through subscribe(), and
        # its clients (subscriptions-transport-ws) send queries and mutations over it
        # as well as subscriptions. Strawberry's subscribe() would refuse them.
        stream = await self.stream(
            query, variable_values=variable_values, context_value=context_value,
            root_value=root_value, operation_name=operation_name,
            operation_extensions=operation_extensions,
        )
        return cast("SubscriptionResult", stream)


def executable_schema(settings: Settings, *, metrics: Metrics | None = None,
                      costs: CostLimits | None = None) -> strawberry.Schema:
    """The schema with its extensions. ``costs`` holds the app's budgets (and the
    Redis connection behind them), which the app closes when it stops."""
    rules = (depth_limit(settings.max_depth), alias_limit(settings.max_aliases))
    extensions: list[Any] = [
        lambda: OperationTelemetry(metrics),
        lambda: OperationContext(settings.max_tokens, rules),
        DocumentCache,
        costs or CostLimits(settings),
        Access,
        ErrorCodes,
    ]
    mode = settings.compiled_execution
    compiler = None if mode == "off" else Compiler(verify=mode == "verify")
    executor = type("CrmExecutor", (CrmExecutor,), {"compiler": compiler})
    schema = build_schema(extensions, schema_class=CrmSchema, execution_context_class=executor)
    schema.compiler = compiler  # type: ignore[attr-defined]
    return schema
