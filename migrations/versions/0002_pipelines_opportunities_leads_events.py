"""Pipelines, phases, opportunities, phase changes, leads and the event outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_events_topic_id', ['topic', 'id'], unique=False)

    op.create_table('pipelines',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum('SALES', 'MARKETING', name='pipelinekind', native_enum=False, length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipelines')),
    sa.UniqueConstraint('name', name=op.f('uq_pipelines_name'))
    )
    op.create_table('phases',
    sa.Column('pipeline_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('OPEN', 'WON', 'LOST', name='phaseoutcome', native_enum=False, length=32), nullable=False),
    sa.Column('forecast_category', sa.Enum('PIPELINE', 'BEST_CASE', 'COMMIT', 'CLOSED', 'OMITTED', name='forecastcategory', native_enum=False, length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('probability >= 0 AND probability <= 100', name=op.f('ck_phases_probability_percent')),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_phases_pipeline_id_pipelines')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phases')),
    sa.UniqueConstraint('pipeline_id', 'name', name=op.f('uq_phases_pipeline_id_name'))
    )
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phases_pipeline_id'), ['pipeline_id'], unique=False)

    op.create_table('opportunities',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('amount', models.base.Money(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('pipeline_id', sa.Integer(), nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('expected_close_date', sa.Date(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('offering_area_id', sa.Integer(), nullable=True),
    sa.Column('source_campaign_id', sa.Integer(), nullable=True),
    sa.Column('lost_reason', sa.Text(), nullable=True),
    sa.Column('phase_entered_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('probability >= 0 AND probability <= 100', name=op.f('ck_opportunities_probability_percent')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_opportunities_account_id_accounts')),
    sa.ForeignKeyConstraint(['offering_area_id'], ['offering_areas.id'], name=op.f('fk_opportunities_offering_area_id_offering_areas')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_opportunities_owner_id_users')),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_opportunities_phase_id_phases')),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_opportunities_pipeline_id_pipelines')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunities'))
    )
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunities_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_expected_close_date'), ['expected_close_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_offering_area_id'), ['offering_area_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_phase_id'), ['phase_id'], unique=False)
        batch_op.create_index('ix_opportunities_pipeline_id_phase_id', ['pipeline_id', 'phase_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_source_campaign_id'), ['source_campaign_id'], unique=False)

    op.create_table('leads',
    sa.Column('company', sa.String(length=200), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=50), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=True),
    sa.Column('source', sa.String(length=100), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('pipeline_id', sa.Integer(), nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('phase_entered_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('converted_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('converted_account_id', sa.Integer(), nullable=True),
    sa.Column('converted_contact_id', sa.Integer(), nullable=True),
    sa.Column('converted_opportunity_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['converted_account_id'], ['accounts.id'], name=op.f('fk_leads_converted_account_id_accounts')),
    sa.ForeignKeyConstraint(['converted_contact_id'], ['contacts.id'], name=op.f('fk_leads_converted_contact_id_contacts')),
    sa.ForeignKeyConstraint(['converted_opportunity_id'], ['opportunities.id'], name=op.f('fk_leads_converted_opportunity_id_opportunities')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_leads_owner_id_users')),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_leads_phase_id_phases')),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_leads_pipeline_id_pipelines')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads'))
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leads_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('ix_leads_pipeline_id_phase_id', ['pipeline_id', 'phase_id'], unique=False)

    op.create_table('phase_changes',
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('from_phase_id', sa.Integer(), nullable=True),
    sa.Column('to_phase_id', sa.Integer(), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('amount', models.base.Money(precision=18, scale=4), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_phase_changes_changed_by_id_users')),
    sa.ForeignKeyConstraint(['from_phase_id'], ['phases.id'], name=op.f('fk_phase_changes_from_phase_id_phases')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_phase_changes_opportunity_id_opportunities')),
    sa.ForeignKeyConstraint(['to_phase_id'], ['phases.id'], name=op.f('fk_phase_changes_to_phase_id_phases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phase_changes'))
    )
    with op.batch_alter_table('phase_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phase_changes_changed_at'), ['changed_at'], unique=False)
        batch_op.create_index('ix_phase_changes_opportunity_id_changed_at', ['opportunity_id', 'changed_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('phase_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_phase_changes_opportunity_id_changed_at')
        batch_op.drop_index(batch_op.f('ix_phase_changes_changed_at'))

    op.drop_table('phase_changes')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_pipeline_id_phase_id')
        batch_op.drop_index(batch_op.f('ix_leads_owner_id'))
        batch_op.drop_index(batch_op.f('ix_leads_email'))
        batch_op.drop_index(batch_op.f('ix_leads_campaign_id'))

    op.drop_table('leads')
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opportunities_source_campaign_id'))
        batch_op.drop_index('ix_opportunities_pipeline_id_phase_id')
        batch_op.drop_index(batch_op.f('ix_opportunities_phase_id'))
        batch_op.drop_index(batch_op.f('ix_opportunities_owner_id'))
        batch_op.drop_index(batch_op.f('ix_opportunities_offering_area_id'))
        batch_op.drop_index(batch_op.f('ix_opportunities_expected_close_date'))
        batch_op.drop_index(batch_op.f('ix_opportunities_account_id'))

    op.drop_table('opportunities')
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phases_pipeline_id'))

    op.drop_table('phases')
    op.drop_table('pipelines')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_topic_id')
        batch_op.drop_index(batch_op.f('ix_events_created_at'))

    op.drop_table('events')
