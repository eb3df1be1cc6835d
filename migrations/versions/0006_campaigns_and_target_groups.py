"""Campaigns and their members, target groups and their entries, and the campaign links
of opportunities, leads and activities.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('type', sa.Enum('EVENT', 'EMAIL', 'CALL', 'PROJECT', name='campaigntype', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('PLANNED', 'ACTIVE', 'COMPLETED', 'CANCELLED', name='campaignstatus', native_enum=False, length=32), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=True),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('budget', models.base.Money(precision=18, scale=4), nullable=True),
    sa.Column('actual_cost', models.base.Money(precision=18, scale=4), nullable=True),
    sa.Column('expected_revenue', models.base.Money(precision=18, scale=4), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('event_place', sa.String(length=300), nullable=True),
    sa.Column('event_starts_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('capacity IS NULL OR capacity >= 0', name=op.f('ck_campaigns_capacity_not_negative')),
    sa.CheckConstraint('ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on', name=op.f('ck_campaigns_period')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_campaigns_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaigns_owner_id'), ['owner_id'], unique=False)

    op.create_table('target_groups',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum('ACCOUNT', 'CONTACT', name='targetgroupkind', native_enum=False, length=32), nullable=False),
    sa.Column('visibility', sa.Enum('PERSONAL', 'SHARED', name='targetgroupvisibility', native_enum=False, length=32), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('filter', sa.JSON(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_target_groups_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_target_groups'))
    )
    with op.batch_alter_table('target_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_target_groups_owner_id'), ['owner_id'], unique=False)

    op.create_table('campaign_members',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('INVITED', 'REGISTERED', 'WAITLISTED', 'ATTENDED', 'NO_SHOW', 'DECLINED', 'TO_CALL', 'CALLED', 'REACHED', 'NOT_REACHED', 'SENT', 'OPENED', 'BOUNCED', 'UNSUBSCRIBED', 'INVOLVED', 'RESPONDED', name='memberstatus', native_enum=False, length=32), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('responded_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('waitlisted_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_campaign_members_agent_id_users')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_members_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_campaign_members_contact_id_contacts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_members')),
    sa.UniqueConstraint('campaign_id', 'contact_id', name=op.f('uq_campaign_members_campaign_id_contact_id'))
    )
    with op.batch_alter_table('campaign_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_members_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index('ix_campaign_members_campaign_id_status', ['campaign_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_members_contact_id'), ['contact_id'], unique=False)

    op.create_table('target_group_entries',
    sa.Column('target_group_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('excluded', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(account_id IS NULL) <> (contact_id IS NULL)', name=op.f('ck_target_group_entries_one_member')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_target_group_entries_account_id_accounts')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_target_group_entries_contact_id_contacts')),
    sa.ForeignKeyConstraint(['target_group_id'], ['target_groups.id'], name=op.f('fk_target_group_entries_target_group_id_target_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_target_group_entries')),
    sa.UniqueConstraint('target_group_id', 'account_id', name=op.f('uq_target_group_entries_target_group_id_account_id')),
    sa.UniqueConstraint('target_group_id', 'contact_id', name=op.f('uq_target_group_entries_target_group_id_contact_id'))
    )
    with op.batch_alter_table('target_group_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_target_group_entries_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_target_group_entries_contact_id'), ['contact_id'], unique=False)

    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_activities_campaign_id_campaigns'), 'campaigns', ['campaign_id'], ['id'])

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_leads_campaign_id_campaigns'), 'campaigns', ['campaign_id'], ['id'])

    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_opportunities_source_campaign_id_campaigns'), 'campaigns', ['source_campaign_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_opportunities_source_campaign_id_campaigns'), type_='foreignkey')

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_leads_campaign_id_campaigns'), type_='foreignkey')

    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_activities_campaign_id_campaigns'), type_='foreignkey')

    with op.batch_alter_table('target_group_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_target_group_entries_contact_id'))
        batch_op.drop_index(batch_op.f('ix_target_group_entries_account_id'))

    op.drop_table('target_group_entries')
    with op.batch_alter_table('campaign_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_members_contact_id'))
        batch_op.drop_index('ix_campaign_members_campaign_id_status')
        batch_op.drop_index(batch_op.f('ix_campaign_members_agent_id'))

    op.drop_table('campaign_members')
    with op.batch_alter_table('target_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_target_groups_owner_id'))

    op.drop_table('target_groups')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaigns_owner_id'))
        batch_op.drop_index(batch_op.f('ix_campaigns_name'))

    op.drop_table('campaigns')
