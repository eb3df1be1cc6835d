"""Pipeline administration: phases are removed softly (removed_at), since the phase
history refers to them, and phase names are unique among the phases in use only.

Downgrading fails while a removed phase shares its name with one in use in the same
pipeline: rename one of them first.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IN_USE = sa.text('removed_at IS NULL')


def upgrade() -> None:
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_phases_pipeline_id_name'), type_='unique')
        batch_op.create_index('uq_phases_pipeline_id_name', ['pipeline_id', 'name'], unique=True,
                              sqlite_where=IN_USE, postgresql_where=IN_USE)


def downgrade() -> None:
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.drop_index('uq_phases_pipeline_id_name', sqlite_where=IN_USE,
                            postgresql_where=IN_USE)
        batch_op.create_unique_constraint(batch_op.f('uq_phases_pipeline_id_name'), ['pipeline_id', 'name'])
        batch_op.drop_column('removed_at')
