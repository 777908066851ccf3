"""``customer_orders_customer_idx`` (customer_id) goes: ``customer_orders_customer_ordered_idx``
(customer_id, ordered_at) serves every lookup by customer as well, and each recorded
order paid for a second random insert into an index of the table that grows fastest.

Revision ID: 0008
"""

from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.drop_index("customer_orders_customer_idx", table_name="customer_orders")


def downgrade() -> None:
    op.create_index("customer_orders_customer_idx", "customer_orders", ["customer_id"])
