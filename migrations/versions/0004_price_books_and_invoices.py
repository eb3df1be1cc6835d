"""Price books with tiered entries, customer price agreements, invoices and lines.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('price_books',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('is_standard', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from', name=op.f('ck_price_books_valid_period')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_books')),
    sa.UniqueConstraint('name', name=op.f('uq_price_books_name'))
    )
    with op.batch_alter_table('price_books', schema=None) as batch_op:
        batch_op.create_index('uq_price_books_standard_currency', ['currency'], unique=True, sqlite_where=sa.text('is_standard'), postgresql_where=sa.text('is_standard'))

    op.create_table('price_book_entries',
    sa.Column('price_book_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('unit_price', models.base.Money(precision=18, scale=4), nullable=False),
    sa.Column('min_quantity', models.base.Quantity(precision=18, scale=4), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('min_quantity >= 0', name=op.f('ck_price_book_entries_min_quantity_not_negative')),
    sa.CheckConstraint('unit_price >= 0', name=op.f('ck_price_book_entries_unit_price_not_negative')),
    sa.ForeignKeyConstraint(['price_book_id'], ['price_books.id'], name=op.f('fk_price_book_entries_price_book_id_price_books')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_price_book_entries_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_book_entries')),
    sa.UniqueConstraint('price_book_id', 'product_id', 'min_quantity', name=op.f('uq_price_book_entries_price_book_id_product_id_min_quantity'))
    )
    with op.batch_alter_table('price_book_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_price_book_entries_product_id'), ['product_id'], unique=False)

    op.create_table('account_price_books',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('price_book_id', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_to >= valid_from', name=op.f('ck_account_price_books_valid_period')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_price_books_account_id_accounts')),
    sa.ForeignKeyConstraint(['price_book_id'], ['price_books.id'], name=op.f('fk_account_price_books_price_book_id_price_books')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_price_books'))
    )
    with op.batch_alter_table('account_price_books', schema=None) as batch_op:
        batch_op.create_index('ix_account_price_books_account_id_valid_from', ['account_id', 'valid_from'], unique=False)
        batch_op.create_index(batch_op.f('ix_account_price_books_price_book_id'), ['price_book_id'], unique=False)

    op.create_table('invoices',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=50), nullable=False),
    sa.Column('invoice_date', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('status', sa.Enum('DRAFT', 'SENT', 'PAID', 'CANCELLED', name='invoicestatus', native_enum=False, length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('total', models.base.Money(precision=18, scale=4), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('due_date IS NULL OR due_date >= invoice_date', name=op.f('ck_invoices_due_after_date')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_invoices_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('external_id', name=op.f('uq_invoices_external_id')),
    sa.UniqueConstraint('number', name=op.f('uq_invoices_number'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_account_id_invoice_date', ['account_id', 'invoice_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_invoice_date'), ['invoice_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_status'), ['status'], unique=False)

    op.create_table('invoice_lines',
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('quantity', models.base.Quantity(precision=18, scale=4), nullable=False),
    sa.Column('unit_price', models.base.Money(precision=18, scale=4), nullable=False),
    sa.Column('discount_percent', models.base.Quantity(precision=18, scale=4), nullable=False),
    sa.Column('price_source', sa.Enum('AGREEMENT', 'STANDARD', 'LIST_PRICE', 'MANUAL', name='pricesource', native_enum=False, length=32), nullable=False),
    sa.Column('price_book_id', sa.Integer(), nullable=True),
    sa.Column('line_total', models.base.Money(precision=18, scale=4), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('discount_percent >= 0', name=op.f('ck_invoice_lines_discount_percent_not_negative')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_invoice_lines_quantity_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_lines_invoice_id_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['price_book_id'], ['price_books.id'], name=op.f('fk_invoice_lines_price_book_id_price_books')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_invoice_lines_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_lines'))
    )
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_lines_invoice_id_position', ['invoice_id', 'position'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_lines_product_id'), ['product_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_lines_product_id'))
        batch_op.drop_index('ix_invoice_lines_invoice_id_position')

    op.drop_table('invoice_lines')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_status'))
        batch_op.drop_index(batch_op.f('ix_invoices_invoice_date'))
        batch_op.drop_index('ix_invoices_account_id_invoice_date')

    op.drop_table('invoices')
    with op.batch_alter_table('account_price_books', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_price_books_price_book_id'))
        batch_op.drop_index('ix_account_price_books_account_id_valid_from')

    op.drop_table('account_price_books')
    with op.batch_alter_table('price_book_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_price_book_entries_product_id'))

    op.drop_table('price_book_entries')
    with op.batch_alter_table('price_books', schema=None) as batch_op:
        batch_op.drop_index('uq_price_books_standard_currency', sqlite_where=sa.text('is_standard'), postgresql_where=sa.text('is_standard'))

    op.drop_table('price_books')
