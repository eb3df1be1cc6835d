"""Budgets and forecasts per account, offering area and month.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('budgets',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('offering_area_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('amount', models.base.Money(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_budgets_amount_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_budgets_account_id_accounts')),
    sa.ForeignKeyConstraint(['offering_area_id'], ['offering_areas.id'], name=op.f('fk_budgets_offering_area_id_offering_areas')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budgets')),
    sa.UniqueConstraint('account_id', 'offering_area_id', 'period', name=op.f('uq_budgets_account_id_offering_area_id_period'))
    )
    with op.batch_alter_table('budgets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_budgets_period'), ['period'], unique=False)

    op.create_table('forecasts',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('offering_area_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('amount', models.base.Money(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('kind', sa.Enum('FIXED', 'ROLLING', name='forecastkind', native_enum=False, length=32), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=False),
    sa.Column('submitted_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_forecasts_amount_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_forecasts_account_id_accounts')),
    sa.ForeignKeyConstraint(['offering_area_id'], ['offering_areas.id'], name=op.f('fk_forecasts_offering_area_id_offering_areas')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_forecasts_submitted_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_forecasts'))
    )
    with op.batch_alter_table('forecasts', schema=None) as batch_op:
        batch_op.create_index('ix_forecasts_account_id_offering_area_id_period', ['account_id', 'offering_area_id', 'period', 'submitted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_forecasts_period'), ['period'], unique=False)
        batch_op.create_index('uq_forecasts_fixed_key', ['account_id', 'offering_area_id', 'period'], unique=True, sqlite_where=sa.text("kind = 'FIXED'"), postgresql_where=sa.text("kind = 'FIXED'"))



def downgrade() -> None:
    with op.batch_alter_table('forecasts', schema=None) as batch_op:
        batch_op.drop_index('uq_forecasts_fixed_key', sqlite_where=sa.text("kind = 'FIXED'"), postgresql_where=sa.text("kind = 'FIXED'"))
        batch_op.drop_index(batch_op.f('ix_forecasts_period'))
        batch_op.drop_index('ix_forecasts_account_id_offering_area_id_period')

    op.drop_table('forecasts')
    with op.batch_alter_table('budgets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_budgets_period'))

    op.drop_table('budgets')
