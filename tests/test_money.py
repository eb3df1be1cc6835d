"""Money and Quantity read from PostgreSQL (asyncpg) present their values as
process_result_value does, through one call per value (models/base.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from models.base import Money, Quantity

NUMERIC_OID = 1700
VALUES = [None, Decimal("19282.0000"), Decimal("0.0000"), Decimal("-12.3400"),
          Decimal("1.2345"), Decimal("100.1230"), Decimal("1E+2"), Decimal("99999999999999.9999")]


@pytest.mark.parametrize("type_", [Money(), Quantity()])
def test_asyncpg_values_are_presented_as_process_result_value_does(type_: Money) -> None:
    dialect = asyncpg_dialect()
    process = type_.dialect_impl(dialect).result_processor(dialect, NUMERIC_OID)
    assert process is not None
    for value in VALUES:
        expected = type_.process_result_value(value, dialect)
        got = process(value)
        assert (str(got), type(got)) == (str(expected), type(expected)), value
