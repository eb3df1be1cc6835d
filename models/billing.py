"""Invoices and their lines: the billed figures the account plan lays beside budgets."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, Quantity, Timestamped, Versioned
from models.pricing import PriceSource
from models.users import enum_column


class InvoiceStatus(enum.Enum):
    DRAFT = "DRAFT"
    SENT = "SENT"
    PAID = "PAID"
    CANCELLED = "CANCELLED"


class Invoice(Versioned, Base):
    __tablename__ = "invoices"
    __table_args__ = (
        Index("ix_invoices_account_id_invoice_date", "account_id", "invoice_date"),
        CheckConstraint("due_date IS NULL OR due_date >= invoice_date", name="due_after_date"),
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    number: Mapped[str] = mapped_column(String(50), nullable=False, unique=True)
    invoice_date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    due_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[InvoiceStatus] = mapped_column(enum_column(InvoiceStatus), nullable=False,
                                                  index=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    # The invoice's id in the ERP it was imported from: imports are idempotent by it.
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    notes: Mapped[str | None] = mapped_column(Text)
    # Kept equal to the sum of the line totals by every write.
    total: Mapped[Decimal] = mapped_column(Money(), nullable=False, default=Decimal(0))


class InvoiceLine(Timestamped, Base):
    """Lines change only through their invoice, whose version guards them."""

    __tablename__ = "invoice_lines"
    __table_args__ = (
        Index("ix_invoice_lines_invoice_id_position", "invoice_id", "position"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        # Not "<= 100": SQLite keeps the percent scaled (see Money); the API checks it.
        CheckConstraint("discount_percent >= 0", name="discount_percent_not_negative"),
    )

    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"),
                                            nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    description: Mapped[str | None] = mapped_column(String(500))
    quantity: Mapped[Decimal] = mapped_column(Quantity(), nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Money(), nullable=False)
    discount_percent: Mapped[Decimal] = mapped_column(Quantity(), nullable=False,
                                                      default=Decimal(0))
    price_source: Mapped[PriceSource] = mapped_column(enum_column(PriceSource), nullable=False)
    # The book an automatic price came from (None for LIST_PRICE and MANUAL).
    price_book_id: Mapped[int | None] = mapped_column(ForeignKey("price_books.id"))
    line_total: Mapped[Decimal] = mapped_column(Money(), nullable=False)
