"""behaviour events (view, search, cart, support, purchase, review, return) for journeys and the funnel

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('product_id', sa.String(length=64), nullable=True),
    sa.Column('query', sa.String(length=500), nullable=True),
    sa.Column('order_id', sa.String(length=64), nullable=True),
    sa.Column('session_id', sa.String(length=128), nullable=True),
    sa.Column('source', sa.String(length=50), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_customer_time', ['customer_id', 'occurred_at', 'kind'], unique=False)
        batch_op.create_index('ix_events_kind_time', ['kind', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_product_id'), ['product_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_product_id'))
        batch_op.drop_index('ix_events_kind_time')
        batch_op.drop_index('ix_events_customer_time')
    op.drop_table('events')
