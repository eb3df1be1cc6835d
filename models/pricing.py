"""The catalogue: offering areas and products (price books come with pricing)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, Versioned


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
