"""SQLAlchemy Core tables of order-svc (the schema itself is in migrations/)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("channel", Text),
    Column("channel_order_id", Text),
    Column("state", Text),
    Column("customer_id", Uuid),
    Column("customer", JSONB),
    Column("currency", Text),
    Column("total", Numeric(16, 2)),
    Column("priority", Text),
    Column("shipping_address", JSONB),
    Column("delivery_requirements", JSONB),
    Column("notes", Text),
    Column("paid_at", DateTime(timezone=True)),
    Column("exception_reason", Text),
    Column("credit_degraded", Boolean),
    Column("carrier", Text),
    Column("tracking_number", Text),
    Column("shipped_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_reason", Text),
    Column("channel_updated_at", DateTime(timezone=True)),
    Column("refunded_at", DateTime(timezone=True)),
    Column("refund_reason", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", Text),
    Column("qty", Integer),
    Column("unit_price", Numeric(14, 2)),
    Column("warehouse", Text),
)

order_transitions = Table(
    "order_transitions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("order_id", Uuid),
    Column("from_state", Text),
    Column("to_state", Text),
    Column("actor", Text),
    Column("reason", Text),
    Column("at", DateTime(timezone=True)),
)

credit_checks = Table(
    "credit_checks",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("status", Text),
    Column("request", JSONB),
    Column("requested_at", DateTime(timezone=True)),
    Column("deadline_at", DateTime(timezone=True)),
    Column("claimed_at", DateTime(timezone=True)),
    Column("claims", Integer),
    Column("finished_at", DateTime(timezone=True)),
    Column("degraded_reason", Text),
    Column("detail", Text),
    Column("external_ref", Text),
    Column("callback_at", DateTime(timezone=True)),
    Column("callback_decision", Text),
    Column("callback_late", Boolean),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column("request_hash", Text),
    Column("order_id", Uuid),
    Column("status_code", Integer),
    Column("response", JSONB),
    Column("created_at", DateTime(timezone=True)),
)

# -- SLA clocks and the exception queue (migration 0005) --------------------------------

order_sla = Table(
    "order_sla",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("stage", Text, primary_key=True),
    Column("channel", Text),
    Column("order_class", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("deadline_at", DateTime(timezone=True)),
    Column("at_risk_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("ended_state", Text),
    Column("at_risk_sent_at", DateTime(timezone=True)),
    Column("breached_sent_at", DateTime(timezone=True)),
)

order_exceptions = Table(
    "order_exceptions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("order_id", Uuid),
    Column("channel", Text),
    Column("cause", Text),
    Column("detail", Text),
    Column("state", Text),
    Column("opened_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", Text),
    Column("action", Text),
    Column("note", Text),
)

workflow_rule_sets = Table(
    "workflow_rule_sets",
    metadata,
    Column("version", BigInteger, primary_key=True),
    Column("rules", JSONB),
    Column("set_by", Text),
    Column("set_at", DateTime(timezone=True)),
)

order_workflow_approvals = Table(
    "order_workflow_approvals",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("rule", Text, primary_key=True),
    Column("approved_by", Text),
    Column("approved_at", DateTime(timezone=True)),
    Column("exception_id", Uuid),
)
