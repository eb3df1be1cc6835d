"""Top-level GraphQL errors with a code, safe to show to the client.

They live here, the lowest layer that raises them (bad cursors, ids and filters);
resolvers and the schema raise them too.
"""

from __future__ import annotations


class ApiError(Exception):
    """A top-level GraphQL error whose message is safe to show, with its code."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(ApiError):
    code = "UNAUTHENTICATED"


class Forbidden(ApiError):
    code = "FORBIDDEN"


class BadUserInput(ApiError):
    code = "BAD_USER_INPUT"
