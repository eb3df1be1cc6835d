"""The declarative base, shared column types and mixins."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, MetaData, Numeric
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so Alembic migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is kept
    as naive UTC and made aware again on the way out. Naive input is refused: a
    naive datetime in this code base is a bug, not a convention.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        # Said explicitly: SQLAlchemy 2.1 answers `object` for a TypeDecorator, and
        # keyset cursors read their values back by this type.
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # asyncpg reads every timestamptz as an aware datetime in UTC already (the
        # binary protocol's microseconds since the epoch): no call per value.
        if dialect.name == "postgresql" and dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)


MONEY_SCALE = 4
_MONEY_FACTOR = Decimal(10) ** MONEY_SCALE
_CENT = Decimal("0.01")


def _present(value: Decimal) -> Decimal:
    """Two decimals unless the value really carries more (unit prices may)."""
    cents = value.quantize(_CENT)
    return cents if cents == value else value.normalize()


class Money(TypeDecorator[Decimal]):
    """An exact decimal amount with four decimals on every database.

    PostgreSQL stores NUMERIC(18, 4). SQLite has no decimal type and would turn
    amounts into floats, so there the value is stored as an integer of
    ten-thousandths: sums and comparisons in SQL stay exact on both.
    """

    impl = Numeric(18, MONEY_SCALE)
    cache_ok = True

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value)
        if dialect.name == "sqlite":
            return int((value * _MONEY_FACTOR).to_integral_value())
        return value.quantize(Decimal(1).scaleb(-MONEY_SCALE))

    @staticmethod
    def present(value: Decimal) -> Decimal:
        return _present(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return self.present(Decimal(int(value)) / _MONEY_FACTOR)
        return self.present(Decimal(value))

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # asyncpg reads NUMERIC as a Decimal already: one call per value instead of
        # TypeDecorator's layers and a test of the dialect per value (a page of
        # 10,000 deals has 10,000 amounts).
        if dialect.name == "postgresql" and dialect.driver == "asyncpg" and (
                self.impl_instance.result_processor(dialect, coltype) is None):
            present = self.present

            def process(value: Decimal | None) -> Decimal | None:
                return None if value is None else present(value)

            return process
        return super().result_processor(dialect, coltype)


class Quantity(Money):
    """An exact decimal quantity or percent, stored as Money is (four decimals), shown
    without trailing zeros: 2, 1.5, 12.25."""

    cache_ok = True

    @staticmethod
    def present(value: Decimal) -> Decimal:
        return plain(_present(value))


def plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and without an exponent (100, not 1E+2)."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal  # type: ignore[operator]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamped:
    """Integer key and audit timestamps: every table has them."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )


class Versioned(Timestamped):
    """A mutable business record: writers must name the version they read."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    # Every UPDATE carries "WHERE version = <version read>" and bumps it, so two
    # writers racing past the expectedVersion check cannot both win.
    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}
