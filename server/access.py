"""Who may run this document: the viewer is read, then the partner rules applied.

Runs when execution starts, after validation and after the cost is paid (the cost
extension comes first), so a request over its budget, or one that does not parse,
never reaches the database. Both transports ask ``refuse`` the same questions.

A query over HTTP by a staff user read before does not wait for the read: it runs as
the viewer last read while the viewer is read again beside it, and is answered only
once that read agrees (``Confirmation``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType

from loaders.errors import ApiError, Forbidden, Unauthenticated
from models.users import Viewer
from resolvers.documents import document_hash
from resolvers.partner_keys import WRITE_OPPORTUNITIES
from server.auth import AuthError
from server.faults import DatabaseFault, classify

# The mutations a key with write:opportunities may run; every other one is refused.
OPPORTUNITY_MUTATIONS = frozenset({
    "createOpportunity", "updateOpportunity", "moveOpportunityPhase",
})
# The federation SDL (`_service`) shows the schema as introspection does.
INTROSPECTION = frozenset({"__schema", "__type", "_service"})


class NotTrusted(ApiError):
    code = "PERSISTED_QUERY_NOT_IN_LIST"


class Access(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        if self.execution_context.result:
            yield  # refused already (over budget, too costly): ask the database nothing
            return
        execution = self.execution_context
        context = execution.context
        confirmation = None
        if getattr(context, "viewer", None) is None and getattr(context, "credential", None):
            confirmation = _speculate(execution)
            if confirmation is None:
                context.viewer, problem = await _read_viewer(context)
                if problem is not None:
                    _refused(execution, problem)
        document = execution.graphql_document
        if confirmation is None and not execution.result and context.viewer is not None \
                and document is not None:
            problem = await _rules(context.viewer, execution)
            if problem is not None:
                _refused(execution, problem)
        if confirmation is None:
            yield
            return
        try:
            yield
        except BaseException:
            confirmation.cancel()  # gone with the operation (cancelled, failed)
            raise
        if context.confirmation is confirmation:
            # Execution never reached the root fields (variables that do not coerce,
            # say): had the viewer been read first, a refused one would have been told
            # so instead, and is now.
            context.confirmation = None
            _viewer, problem = await confirmation.settle()
            result = execution.result
            if problem is not None and result is not None:
                result.data, result.errors = None, [error_for(problem)]


class Confirmation:
    """The viewer read again beside an operation that runs, meanwhile, as the viewer
    last read for the same credential: a query by a staff user read before.

    Its first statement then no longer waits for the viewer's (a small query's
    latency was the two statements' one after the other). Nothing is answered until
    the read is back (``CrmExecutor.execute_collected_root_fields`` settles it once
    the root fields are done): a viewer deactivated meanwhile is refused, one changed
    meanwhile (a role, a team) has the operation run again as it now is, and only the
    same viewer keeps the answer. So a change still takes effect from the next request
    on, as when the viewer was read first.
    """

    def __init__(self, execution: ExecutionContext, viewer: Viewer) -> None:
        self.viewer = viewer
        self._execution = execution
        self._read = asyncio.ensure_future(_read_viewer(execution.context))

    async def settle(self) -> tuple[Viewer | None, ApiError | None]:
        """The viewer as it is now, or why it may not run the operation."""
        viewer, problem = await self._read
        if problem is None and viewer != self.viewer:
            problem = await _rules(viewer, self._execution)  # type: ignore[arg-type]
        return viewer, problem

    def cancel(self) -> None:
        self._read.cancel()


def _speculate(execution: ExecutionContext) -> Confirmation | None:
    """A Confirmation for a query over HTTP by a staff user read before; else None,
    and the viewer is read first. Mutations never run as a viewer not yet read, and
    the partner rules are applied before anything runs."""
    context = execution.context
    authenticator = getattr(context, "authenticator", None)
    if execution.operation_type is not StrawberryOperationType.QUERY or \
            authenticator is None or getattr(context, "websocket", None) is not None:
        return None
    viewer = authenticator.recent(context.credential)
    if viewer is None:
        return None
    context.viewer = viewer
    context.confirmation = confirmation = Confirmation(execution, viewer)
    return confirmation


async def _read_viewer(context: Any) -> tuple[Viewer | None, ApiError | None]:
    """The viewer the request's credential acts as, or why there is none."""
    try:
        return await context.authenticator.viewer_for(context.credential), None
    except AuthError as exc:
        return None, Unauthenticated(str(exc))
    except Exception as exc:
        # Raised from here it would reach the client uncoded, its text as the
        # message and 400 as the status: a database away is said as such.
        fault = classify(exc)
        if fault is None:
            raise
        return None, DatabaseFault(fault)


async def _rules(viewer: Viewer, execution: ExecutionContext) -> ApiError | None:
    """``refuse``, with a database away said as such."""
    document = execution.graphql_document
    if document is None:
        return None
    try:
        return await refuse(viewer, document, execution.operation_name, execution.query,
                            getattr(execution.context, "documents", None))
    except Exception as exc:  # the trusted documents are read from the database
        fault = classify(exc)
        if fault is None:
            raise
        return DatabaseFault(fault)


def error_for(problem: ApiError) -> GraphQLError:
    """The problem as the GraphQL error the client gets, with its code."""
    return GraphQLError(problem.message, extensions={
        "code": problem.code, **getattr(problem, "extensions", {})})


def _refused(execution: ExecutionContext, problem: ApiError) -> None:
    error = error_for(problem)
    if execution.operation_type is StrawberryOperationType.SUBSCRIPTION:
        # Strawberry subscribes whatever the result says; an error raised
        # here is what the client gets instead, and nothing is subscribed.
        raise error
    execution.result = ExecutionResult(data=None, errors=[error])


async def refuse(viewer: Viewer, document: DocumentNode, operation_name: str | None,
                 text: str | None, documents: object) -> ApiError | None:
    """Why this viewer may not run this document, or None. Staff may run anything
    valid; a partner's org may turn introspection on, and may bind its clients to
    the documents it trusts; a key may only do what its scopes say."""
    if not viewer.is_partner:
        return None
    operation = _operation(document, operation_name)
    if operation is None:
        return None  # graphql-core reports the unknown operation
    if viewer.trusted_documents_only and not await _trusted(viewer, text, documents):
        return NotTrusted("this partner org runs only its trusted documents: send a "
                          "registered document or its sha256Hash")
    fields = _root_fields(document, operation.selection_set)
    # These are valid only at the root of a query (fragments included).
    if not viewer.allow_introspection and fields & INTROSPECTION:
        return Forbidden("introspection is off for this partner org")
    # A partner user's own token meets the write policy in each resolver (which
    # refuses); a key is held to its scopes before anything runs.
    if operation.operation is OperationType.MUTATION and viewer.key_id is not None:
        if WRITE_OPPORTUNITIES not in viewer.scopes:
            return Forbidden("this API key may only read")
        if not_allowed := sorted(fields - OPPORTUNITY_MUTATIONS - {"__typename"}):
            return Forbidden(f"the scope {WRITE_OPPORTUNITIES} does not cover "
                             f"{', '.join(not_allowed)}")
    return None


async def _trusted(viewer: Viewer, text: str | None, documents: object) -> bool:
    """Is the text run (sent whole, or found by its hash) one the org trusts?"""
    if text is None or documents is None or viewer.partner_org_id is None:
        return False
    return bool(await documents.is_trusted(  # type: ignore[attr-defined]
        viewer.partner_org_id, document_hash(text)))


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _root_fields(document: DocumentNode, selection_set: SelectionSetNode) -> set[str]:
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    names: set[str] = set()
    pending = [selection_set]
    seen: set[str] = set()
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    pending.append(fragments[name].selection_set)
    return names

