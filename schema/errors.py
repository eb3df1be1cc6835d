"""userErrors: business-rule failures a client can show next to a form field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry

from resolvers.errors import UserErrorCode as UserErrorCodeEnum
from resolvers.errors import UserErrorData

UserErrorCode = strawberry.enum(
    UserErrorCodeEnum,
    name="UserErrorCode",
    description="Why a mutation was refused.",
)


@strawberry.type(description="A business-rule failure; nothing was changed.")
class UserError:
    field: str | None = strawberry.field(
        description="The input field at fault (camelCase, dotted for nested), if any."
    )
    code: UserErrorCode
    message: str

    @classmethod
    def from_data(cls, data: UserErrorData) -> UserError:
        return cls(field=data.field, code=data.code, message=data.message)


def user_errors(errors: list[UserErrorData]) -> list[UserError]:
    return [UserError.from_data(e) for e in errors]


P = TypeVar("P")


def payload(kind: Callable[..., P], name: str, convert: Callable[[Any], Any], outcome: Any
            ) -> P:
    """A mutation payload: the changed object under ``name`` (built by ``convert``, null
    when the mutation was refused) and the userErrors."""
    value = convert(outcome.value) if outcome.value is not None else None
    return kind(**{name: value, "user_errors": user_errors(outcome.errors)})
