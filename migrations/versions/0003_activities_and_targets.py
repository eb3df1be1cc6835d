"""Activities, activity types with the standard CALL, MEETING and TASK, and weekly
activity targets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STANDARD_TYPES = (('CALL', 'Call', 1), ('MEETING', 'Meeting', 3), ('TASK', 'Task', 1))


def upgrade() -> None:
    op.create_table('activity_types',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('points >= 0', name=op.f('ck_activity_types_points_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_types')),
    sa.UniqueConstraint('code', name=op.f('uq_activity_types_code'))
    )
    op.create_table('activity_targets',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('week', sa.Date(), nullable=False),
    sa.Column('metric', sa.Enum('COUNT', 'POINTS', name='targetmetric', native_enum=False, length=32), nullable=False),
    sa.Column('activity_type_id', sa.Integer(), nullable=True),
    sa.Column('target', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('target >= 0', name=op.f('ck_activity_targets_target_not_negative')),
    sa.ForeignKeyConstraint(['activity_type_id'], ['activity_types.id'], name=op.f('fk_activity_targets_activity_type_id_activity_types')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_activity_targets_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_targets'))
    )
    with op.batch_alter_table('activity_targets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_targets_week'), ['week'], unique=False)
    # One target per user, week, metric and type; "no type" is a key too (see the model).
    op.create_index('uq_activity_targets_key', 'activity_targets',
                    ['user_id', 'week', 'metric', sa.text('coalesce(activity_type_id, 0)')],
                    unique=True)

    op.create_table('activities',
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('opportunity_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('due_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Enum('PLANNED', 'DONE', 'CANCELLED', name='activitystatus', native_enum=False, length=32), nullable=False),
    sa.Column('completed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_week', sa.Date(), nullable=True),
    sa.Column('points_earned', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(status = 'DONE' AND completed_at IS NOT NULL AND completed_week IS NOT NULL AND points_earned IS NOT NULL) OR (status <> 'DONE' AND completed_at IS NULL AND completed_week IS NULL AND points_earned IS NULL)", name=op.f('ck_activities_done_has_completion')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_activities_account_id_accounts')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_activities_contact_id_contacts')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_activities_opportunity_id_opportunities')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_activities_owner_id_users')),
    sa.ForeignKeyConstraint(['type_id'], ['activity_types.id'], name=op.f('fk_activities_type_id_activity_types')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities'))
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activities_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_completed_at'), ['completed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_opportunity_id'), ['opportunity_id'], unique=False)
        batch_op.create_index('ix_activities_owner_id_completed_week', ['owner_id', 'completed_week'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_type_id'), ['type_id'], unique=False)

    # A new installation can log activities at once: the standard types and points.
    types = sa.table('activity_types', sa.column('code', sa.String), sa.column('name', sa.String),
                     sa.column('points', sa.Integer), sa.column('active', sa.Boolean),
                     sa.column('version', sa.Integer),
                     sa.column('created_at', models.base.UTCDateTime(timezone=True)),
                     sa.column('updated_at', models.base.UTCDateTime(timezone=True)))
    now = models.base.utcnow()
    op.bulk_insert(types, [
        {'code': code, 'name': name, 'points': points, 'active': True, 'version': 1,
         'created_at': now, 'updated_at': now}
        for code, name, points in STANDARD_TYPES
    ])


def downgrade() -> None:
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activities_type_id'))
        batch_op.drop_index('ix_activities_owner_id_completed_week')
        batch_op.drop_index(batch_op.f('ix_activities_opportunity_id'))
        batch_op.drop_index(batch_op.f('ix_activities_due_at'))
        batch_op.drop_index(batch_op.f('ix_activities_contact_id'))
        batch_op.drop_index(batch_op.f('ix_activities_completed_at'))
        batch_op.drop_index(batch_op.f('ix_activities_campaign_id'))
        batch_op.drop_index(batch_op.f('ix_activities_account_id'))

    op.drop_table('activities')
    op.drop_index('uq_activity_targets_key', table_name='activity_targets')
    with op.batch_alter_table('activity_targets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_targets_week'))

    op.drop_table('activity_targets')
    op.drop_table('activity_types')
