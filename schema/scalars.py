"""Input scalars that refuse what the databases cannot store, at the edge.

They keep their names and output, so clients see no difference but the error:
bad input becomes a BAD_USER_INPUT error before any resolver runs. (String is
reserved by graphql-core; NUL characters in text are refused where text is used:
the filter compiler and the mutation checks.)
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import strawberry
from graphql import GraphQLError

MAX_DECIMAL = Decimal(10) ** 15


def _datetime(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise GraphQLError(f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise GraphQLError(f"{value!r} has no offset: send e.g. 2026-01-31T12:00:00Z")
    return parsed


def _decimal(value: Any) -> Decimal:
    try:
        parsed = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise GraphQLError(f"{value!r} is not a decimal number") from None
    # copy_abs, not abs(): abs() rounds to the context, which raises decimal.Overflow (and
    # a message naming that class) for an exponent such as 1e1000000.
    if not parsed.is_finite() or parsed.copy_abs() >= MAX_DECIMAL:
        raise GraphQLError(f"{value!r} is out of range")
    return parsed


AwareDateTime = strawberry.scalar(
    name="DateTime", serialize=datetime.isoformat, parse_value=_datetime,
    description="An ISO 8601 date-time with an offset, e.g. 2026-03-01T09:30:00+02:00.",
)
BoundedDecimal = strawberry.scalar(
    name="Decimal", serialize=str, parse_value=_decimal,
    description="A decimal number sent as a string, e.g. 1234.50.",
)

SCALAR_MAP: dict[object, Any] = {
    datetime: AwareDateTime,
    Decimal: BoundedDecimal,
}
