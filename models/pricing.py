"""The catalogue (offering areas, products) and pricing: price books with tiered
entries, and the customer price agreements that say which book an account buys from."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, Quantity, Versioned


class OfferingArea(Versioned, Base):
    __tablename__ = "offering_areas"

    code: Mapped[str] = mapped_column(String(50), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class Product(Versioned, Base):
    __tablename__ = "products"

    code: Mapped[str] = mapped_column(String(50), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    offering_area_id: Mapped[int] = mapped_column(
        ForeignKey("offering_areas.id"), nullable=False, index=True
    )
    unit: Mapped[str] = mapped_column(String(30), nullable=False)
    list_price: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class PriceSource(enum.Enum):
    """Where a unit price came from."""

    AGREEMENT = "AGREEMENT"  # the account's agreed price book
    STANDARD = "STANDARD"  # the standard price book of the currency
    LIST_PRICE = "LIST_PRICE"  # the product's list price
    MANUAL = "MANUAL"  # typed on an invoice line: never repriced


class PriceBook(Versioned, Base):
    __tablename__ = "price_books"
    __table_args__ = (
        # At most one standard book per currency.
        Index("uq_price_books_standard_currency", "currency", unique=True,
              sqlite_where=text("is_standard"), postgresql_where=text("is_standard")),
        CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from",
                        name="valid_period"),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    is_standard: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class PriceBookEntry(Versioned, Base):
    """A product's unit price in a book from a minimum quantity on: several entries of
    one product are its price tiers."""

    __tablename__ = "price_book_entries"
    __table_args__ = (
        UniqueConstraint("price_book_id", "product_id", "min_quantity"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint("min_quantity >= 0", name="min_quantity_not_negative"),
    )

    price_book_id: Mapped[int] = mapped_column(ForeignKey("price_books.id"), nullable=False)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), nullable=False,
                                            index=True)
    unit_price: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    min_quantity: Mapped[Decimal] = mapped_column(Quantity(), nullable=False)


class AccountPriceBook(Versioned, Base):
    """A customer price agreement: the account buys from the book in the period. One
    account's agreements in one currency never overlap (checked when they are made)."""

    __tablename__ = "account_price_books"
    __table_args__ = (
        Index("ix_account_price_books_account_id_valid_from", "account_id", "valid_from"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_period"),
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    price_book_id: Mapped[int] = mapped_column(ForeignKey("price_books.id"), nullable=False,
                                               index=True)
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    valid_to: Mapped[date | None] = mapped_column(Date)  # None: until further notice
