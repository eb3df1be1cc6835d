"""Validation rules that bound what one document may ask: depth and aliases."""

from __future__ import annotations

from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)

QUERY_TOO_COMPLEX = {"code": "QUERY_TOO_COMPLEX"}


def _depth(selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode],
           visiting: frozenset[str], limit: int) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue  # introspection is bounded by the schema itself
            depth = 1 + _depth(selection.selection_set, fragments, visiting, limit)
        elif isinstance(selection, InlineFragmentNode):
            depth = _depth(selection.selection_set, fragments, visiting, limit)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in visiting:
                continue  # unknown or cyclic: other rules report those
            depth = _depth(fragment.selection_set, fragments, visiting | {name}, limit)
        else:  # pragma: no cover
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break  # already too deep: no need to walk a hostile document further
    return deepest


def depth_limit(max_depth: int) -> type[ASTValidationRule]:
    class DepthLimit(ASTValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode,
                                       *_args: Any) -> None:
            context: ValidationContext = self.context
            fragments = {f.name.value: f for f in context.document.definitions
                         if isinstance(f, FragmentDefinitionNode)}
            depth = _depth(node.selection_set, fragments, frozenset(), max_depth)
            if depth > max_depth:
                name = node.name.value if node.name else "anonymous"
                self.report_error(GraphQLError(
                    f"operation '{name}' is nested deeper than the limit of {max_depth} levels",
                    node, extensions=QUERY_TOO_COMPLEX,
                ))

    return DepthLimit


def alias_limit(max_aliases: int) -> type[ASTValidationRule]:
    class AliasLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.count = 0
            self.reported = False

        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            if node.alias is None or self.reported:
                return
            self.count += 1
            if self.count > max_aliases:
                self.reported = True
                self.report_error(GraphQLError(
                    f"the document uses more than {max_aliases} aliases",
                    node, extensions=QUERY_TOO_COMPLEX,
                ))

    return AliasLimit
