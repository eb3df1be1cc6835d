"""Input scalars that refuse what the databases cannot store, at the edge.

They keep their names and output, so clients see no difference but the error:
bad input becomes a BAD_USER_INPUT error before any resolver runs. (String is
reserved by graphql-core; NUL characters in text are refused where text is used:
the filter compiler and the mutation checks.)
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.types.base_scalars import DateDefinition

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



@lru_cache(maxsize=4096)
def _date_text(value: date) -> str:
    """A date's ISO text, kept: a page of plans shows a few months on thousands of rows,
    and ``isoformat`` cost several times the look-up."""
    return value.isoformat()


# Strawberry's Date, its text kept per date.
IsoDate = strawberry.scalar(
    name="Date", serialize=_date_text, parse_value=DateDefinition.parse_value,
    description=DateDefinition.description,
)

SCALAR_MAP: dict[object, Any] = {
    date: IsoDate,
    datetime: AwareDateTime,
    Decimal: BoundedDecimal,
}

# Our output coercions, each with the type of value it turns into text that is never
# null: a compiled plan (server/compiled.py) calls it on a value of exactly that type
# without testing for null, an error or a failed coercion first.
EXACT_OUTPUT_INPUTS: dict[Any, type] = {
    datetime.isoformat: datetime,
    str: Decimal,
    _date_text: date,
}
