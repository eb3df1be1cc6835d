"""The executable schema: caches, limits, per-operation loaders and error codes.

One pipeline serves HTTP and WebSocket alike, so both see the same limits and the
same error codes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from loaders.errors import ApiError
from schema.root import build_schema
from server.limits import alias_limit, depth_limit
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


class ErrorCodes(SchemaExtension):
    """Every error leaves with ``extensions.code``; unexpected ones leave masked.

    A resolver's ApiError keeps its message and code. Anything else raised while
    executing is a bug: it is logged with the request id and the client gets
    INTERNAL_SERVER_ERROR with that id, never a stack trace or SQL.
    """

    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": VALIDATION_FAILED}

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
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
            code = QUERY_TOO_COMPLEX if "tokens" in error.message else PARSE_FAILED
            return _with_code(error, code, error.message)
        if original is None and error.path is None:
            # Before execution: variables that do not fit their types, an unknown
            # operation name. The message says which.
            return _with_code(error, BAD_USER_INPUT, error.message)
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


class CrmSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        # ErrorCodes logs what matters, with the request id; client mistakes are
        # not server errors and are not logged.
        return None


def executable_schema(settings: Settings) -> strawberry.Schema:
    rules = [depth_limit(settings.max_depth), alias_limit(settings.max_aliases)]
    extensions: list[Any] = [
        OperationContext,
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ParserCache(maxsize=1_000),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=1_000),
        ErrorCodes,
    ]
    return build_schema(extensions, schema_class=CrmSchema)
