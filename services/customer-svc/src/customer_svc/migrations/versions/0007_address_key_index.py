"""An index on the address key: a new customer's merge candidates are the customers at
the same address or in the same postal code, two index lookups; with only the postal
code indexed, each candidate search read every address on file.

Revision ID: 0007
"""

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_index("customer_addresses_key_idx", "customer_addresses", ["address_key"])


def downgrade() -> None:
    op.drop_index("customer_addresses_key_idx", table_name="customer_addresses")
