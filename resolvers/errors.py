"""Business-rule failures a user can fix: returned as ``userErrors``, not raised.

Top-level errors with a code (ApiError and its kinds) live in loaders.errors, the
lowest layer that raises them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class UserErrorCode(Enum):
    VALIDATION = "VALIDATION"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    FORBIDDEN = "FORBIDDEN"


@dataclass(frozen=True, slots=True)
class UserErrorData:
    field: str | None
    code: UserErrorCode
    message: str


class UserInputError(Exception):
    """Raised inside a mutation's transaction to roll it back and report
    business-rule failures as ``userErrors``."""

    def __init__(self, errors: list[UserErrorData]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors

    @classmethod
    def one(cls, field: str | None, code: UserErrorCode, message: str) -> UserInputError:
        return cls([UserErrorData(field, code, message)])
