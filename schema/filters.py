"""Operator inputs shared by every filter, and ordering direction.

Each entity filter (AccountFilter ...) types its fields with these. Field names
end up as the attributes the filter compiler in loaders/query.py reads.
"""

# No `from __future__ import annotations`: enum_filter() builds classes whose
# annotations must be evaluated where they are written.

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry import UNSET


@strawberry.enum(description="Sort direction.")
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input(description="Conditions on a text field; matching is case-insensitive "
                  "for `contains` and `startsWith`.")
class StringFilter:
    eq: str | None = UNSET
    ne: str | None = UNSET
    in_: list[str] | None = strawberry.field(name="in", default=UNSET)
    not_in: list[str] | None = UNSET
    contains: str | None = UNSET
    starts_with: str | None = UNSET
    is_null: bool | None = UNSET


@strawberry.input(description="Conditions on a reference to another object, by its ID.")
class IDFilter:
    eq: strawberry.ID | None = UNSET
    ne: strawberry.ID | None = UNSET
    in_: list[strawberry.ID] | None = strawberry.field(name="in", default=UNSET)
    not_in: list[strawberry.ID] | None = UNSET
    is_null: bool | None = UNSET


@strawberry.input(description="Conditions on a whole number.")
class IntFilter:
    eq: int | None = UNSET
    ne: int | None = UNSET
    in_: list[int] | None = strawberry.field(name="in", default=UNSET)
    gt: int | None = UNSET
    gte: int | None = UNSET
    lt: int | None = UNSET
    lte: int | None = UNSET


@strawberry.input(description="Conditions on a money amount or other decimal.")
class DecimalFilter:
    eq: Decimal | None = UNSET
    ne: Decimal | None = UNSET
    in_: list[Decimal] | None = strawberry.field(name="in", default=UNSET)
    gt: Decimal | None = UNSET
    gte: Decimal | None = UNSET
    lt: Decimal | None = UNSET
    lte: Decimal | None = UNSET


@strawberry.input(description="Conditions on a calendar date.")
class DateFilter:
    eq: date | None = UNSET
    gt: date | None = UNSET
    gte: date | None = UNSET
    lt: date | None = UNSET
    lte: date | None = UNSET
    is_null: bool | None = UNSET


@strawberry.input(description="Conditions on a point in time (ISO 8601 with an offset).")
class DateTimeFilter:
    eq: datetime | None = UNSET
    gt: datetime | None = UNSET
    gte: datetime | None = UNSET
    lt: datetime | None = UNSET
    lte: datetime | None = UNSET
    is_null: bool | None = UNSET


@strawberry.input(description="Conditions on a yes/no field.")
class BooleanFilter:
    eq: bool | None = UNSET


def enum_filter(enum_type: Any, name: str) -> Any:
    """`{ eq in ne notIn }` for one enum: one input per enum, as the API promises."""

    @strawberry.input(name=name, description=f"Conditions on a {enum_type.__name__} value.")
    class EnumFilter:
        eq: enum_type | None = UNSET
        ne: enum_type | None = UNSET
        in_: list[enum_type] | None = strawberry.field(name="in", default=UNSET)
        not_in: list[enum_type] | None = UNSET

    return EnumFilter
