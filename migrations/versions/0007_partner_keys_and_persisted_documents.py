"""Partner API keys (stored as hashes), persisted and trusted documents, and the
partner org switches for introspection and trusted-documents mode.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('persisted_documents',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('partner_org_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_org_id'], ['partner_orgs.id'], name=op.f('fk_persisted_documents_partner_org_id_partner_orgs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_persisted_documents'))
    )
    with op.batch_alter_table('persisted_documents', schema=None) as batch_op:
        batch_op.create_index('uq_persisted_documents_sha256_org',
                              ['sha256', sa.text('coalesce(partner_org_id, 0)')], unique=True)
    op.create_table('partner_api_keys',
    sa.Column('partner_org_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.String(length=200), nullable=False),
    sa.Column('revoked_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_org_id'], ['partner_orgs.id'], name=op.f('fk_partner_api_keys_partner_org_id_partner_orgs')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_partner_api_keys_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_api_keys')),
    sa.UniqueConstraint('prefix', name=op.f('uq_partner_api_keys_prefix')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_partner_api_keys_secret_hash'))
    )
    with op.batch_alter_table('partner_api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_api_keys_partner_org_id'), ['partner_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_api_keys_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('partner_orgs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allow_introspection', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('trusted_documents_only', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('partner_orgs', schema=None) as batch_op:
        batch_op.drop_column('trusted_documents_only')
        batch_op.drop_column('allow_introspection')

    with op.batch_alter_table('partner_api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_api_keys_user_id'))
        batch_op.drop_index(batch_op.f('ix_partner_api_keys_partner_org_id'))

    op.drop_table('partner_api_keys')
    with op.batch_alter_table('persisted_documents', schema=None) as batch_op:
        batch_op.drop_index('uq_persisted_documents_sha256_org')

    op.drop_table('persisted_documents')
