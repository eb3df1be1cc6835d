"""What every mutation shares: one transaction, input checks, and the outcome."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from loaders.errors import BadUserInput
from loaders.ids import decode_id
from resolvers.errors import UserErrorCode, UserErrorData, UserInputError

T = TypeVar("T")

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Outcome(Generic[T]):
    value: T | None = None
    errors: list[UserErrorData] = field(default_factory=list)


def conflict(message: str = "the record was changed by someone else; reload it and retry"
             ) -> UserInputError:
    return UserInputError.one("expectedVersion", UserErrorCode.CONFLICT, message)


async def mutate(action: Callable[[], Awaitable[T]], *, on_duplicate: str | None = None
                 ) -> Outcome[T]:
    """Run one mutation. ``action`` does all of its work in one transaction: a
    business-rule failure raises inside it, so nothing is half-written.

    With ``on_duplicate``, a unique key violated by a concurrent writer (who got there
    between our check and our write) is a CONFLICT with that message."""
    try:
        return Outcome(await action())
    except UserInputError as exc:
        return Outcome(errors=exc.errors)
    except StaleDataError:
        # Another writer committed between our read and our UPDATE.
        return Outcome(errors=conflict().errors)
    except IntegrityError:
        if on_duplicate is None:
            raise
        return Outcome(errors=[UserErrorData(None, UserErrorCode.CONFLICT, on_duplicate)])


class Checks:
    """Collects field errors so a client hears about all of them at once."""

    def __init__(self) -> None:
        self.errors: list[UserErrorData] = []

    def fail(self, field_name: str | None, message: str,
             code: UserErrorCode = UserErrorCode.VALIDATION) -> None:
        self.errors.append(UserErrorData(field_name, code, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise UserInputError(self.errors)

    def text(self, field_name: str, value: str | None, *, max_length: int,
             required: bool = False) -> str | None:
        """Trimmed text; empty becomes None (or an error when required)."""
        if value is None:
            if required:
                self.fail(field_name, f"{field_name} is required")
            return None
        value = value.strip()
        if "\x00" in value:
            self.fail(field_name, f"{field_name} cannot contain NUL characters")
            return None
        if not value:
            if required:
                self.fail(field_name, f"{field_name} cannot be empty")
            return None
        if len(value) > max_length:
            self.fail(field_name, f"{field_name} can be at most {max_length} characters")
            return None
        return value

    def currency(self, field_name: str, value: str | None) -> str | None:
        if not is_currency_code(value):
            self.fail(field_name, "currency is a three-letter ISO 4217 code such as EUR")
            return None
        return value

    def email(self, field_name: str, value: str | None) -> str | None:
        value = self.text(field_name, value, max_length=320)
        if value is not None and not EMAIL.match(value):
            self.fail(field_name, f"{value!r} is not an email address")
            return None
        return value

    def global_id(self, field_name: str, value: str | None, type_name: str) -> int | None:
        if value is None:
            return None
        try:
            key = decode_id(value, type_name)
        except BadUserInput as exc:
            self.fail(field_name, exc.message)
            return None
        return key


async def lock_row(session: AsyncSession, table: Table, key: int) -> None:
    """Hold ``table``'s row ``key`` to the end of the transaction, so writers that check
    something about it (places left, overlapping periods) and then write take turns."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(table.c.id).where(table.c.id == key).with_for_update())
    else:
        # SQLite locks the whole database at a transaction's first write: write nothing
        # now, so a second writer waits here, before its check, not after it.
        await session.execute(update(table).where(table.c.id == key).values(
            id=table.c.id, updated_at=table.c.updated_at))


def is_currency_code(value: str | None) -> bool:
    """Three ASCII capital letters, as ISO 4217 codes are (EUR, SEK)."""
    return value is not None and len(value) == 3 and value.isascii() and value.isalpha() \
        and value.isupper()


def currency_argument(value: str) -> str:
    """A query's `currency` argument, refused unless it is a code: the figures' SQL binds
    it, and PostgreSQL fails a statement given a NUL character in text."""
    if not is_currency_code(value):
        raise BadUserInput("currency is a three-letter ISO 4217 code such as EUR")
    return value


def require_version(current: int, expected: int) -> None:
    if current != expected:
        raise conflict(
            f"the record is at version {current}, not {expected}: someone else changed it; "
            "reload it and retry"
        )


def not_found(field_name: str, what: str) -> UserInputError:
    return UserInputError.one(field_name, UserErrorCode.NOT_FOUND, f"{what} not found")


M = TypeVar("M")


async def find_record(session: AsyncSession, checks: Checks, field_name: str,
                      gid: str | None, model: type[M], what: str) -> M | None:
    """The record a global id of ``model``'s type names, or None: with the field's
    userError when the id is malformed (VALIDATION) or names nothing (NOT_FOUND)."""
    key = checks.global_id(field_name, gid, model.__name__)
    if key is None:
        return None
    record = await session.get(model, key)
    if record is None:
        checks.fail(field_name, f"{what} not found", UserErrorCode.NOT_FOUND)
    return record


def forbidden(message: str, field_name: str | None = None) -> UserInputError:
    return UserInputError.one(field_name, UserErrorCode.FORBIDDEN, message)


def provided(changes: dict[str, Any], name: str) -> bool:
    return name in changes
