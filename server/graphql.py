"""The executable schema: caches, limits, per-operation loaders and error codes.

One pipeline serves HTTP and WebSocket alike, so both see the same limits and the
same error codes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import suppress
from typing import Any, cast

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, GraphQLObjectType, GraphQLSyntaxError
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, SubscriptionResult
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import StreamExecutionResult

from loaders.errors import ApiError
from schema.root import build_schema
from server import faults
from server.access import Access
from server.compiled import Compiler
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


class OperationContext(SchemaExtension):
    """Each operation gets its own loaders, also when a WebSocket runs many at once."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if hasattr(context, "for_operation"):
            self.execution_context.context = context.for_operation()
        yield


class DocumentCache(ParserCache):
    """Strawberry's ParserCache, except for documents that do not parse.

    ParserCache parses in its hook, outside Strawberry's handling of parse errors, so
    a syntax error (too many tokens, nested too deeply) would escape the operation:
    left uncoded over HTTP and failing the operation over WebSocket. Such a document
    is left to Strawberry's own parse, which reports the same error as a result.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with suppress(GraphQLError, RecursionError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options)
        yield


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
            result.errors = [self._coded(error) for error in result.errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
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
        fault = faults.coded(error, getattr(self.execution_context.context, "request_id", None))
        if fault is not None:
            return fault
        return self._internal(error)

    def _internal(self, error: GraphQLError) -> GraphQLError:
        request_id = getattr(self.execution_context.context, "request_id", None)
        logger.error(
            "unexpected error in %s at %s (request %s): %s",
            self.execution_context.operation_name or "anonymous operation",
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
            return compiler.execute(self, root_type, root_value, grouped_field_set)
        return super().execute_collected_root_fields(
            root_type, root_value, grouped_field_set, serially, new_defer_usages)

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor


class CrmSchema(strawberry.federation.Schema):
    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        # ErrorCodes logs what matters, with the request id; client mistakes are
        # not server errors and are not logged.
        return None

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
    rules = [depth_limit(settings.max_depth), alias_limit(settings.max_aliases)]
    extensions: list[Any] = [
        lambda: OperationTelemetry(metrics),
        OperationContext,
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: DocumentCache(maxsize=1_000),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=1_000),
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
