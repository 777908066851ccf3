"""Customers, their channel identities, and the messaging tables.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from oms_messaging.tables import create_messaging_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "customers",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("display_name", sa.Text),
        sa.Column("phone_e164", sa.Text),
        sa.Column("email_lower", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index(
        "customers_phone_idx",
        "customers",
        ["phone_e164"],
        postgresql_where=sa.text("phone_e164 IS NOT NULL"),
    )
    op.create_index(
        "customers_email_idx",
        "customers",
        ["email_lower"],
        postgresql_where=sa.text("email_lower IS NOT NULL"),
    )
    op.create_table(
        "identities",
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("platform_user_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Uuid, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        # One customer per channel identity, whatever races: resolution inserts with
        # ON CONFLICT on this key and re-reads the winner.
        sa.PrimaryKeyConstraint("channel", "platform_user_id", name="identities_channel_user_pk"),
    )
    op.create_index("identities_customer_idx", "identities", ["customer_id"])
    op.create_index(
        "identities_phone_idx",
        "identities",
        ["phone"],
        postgresql_where=sa.text("phone IS NOT NULL"),
    )
    op.create_index(
        "identities_email_idx",
        "identities",
        ["email"],
        postgresql_where=sa.text("email IS NOT NULL"),
    )


def downgrade() -> None:
    for table in ("identities", "customers"):
        op.drop_table(table)
