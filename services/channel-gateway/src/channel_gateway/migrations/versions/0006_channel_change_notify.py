"""Every change of a channel or its SKU map is announced (NOTIFY channel_config_changed,
payload: the channel's name; empty after a TRUNCATE, meaning every channel), delivered
when the change commits, so each replica drops its cached copy at once, whoever wrote
the change (an API route on another replica, a migration, a manual fix).

Revision ID: 0006
"""

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_channel_config_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            key text := TG_ARGV[0];
        BEGIN
            IF TG_LEVEL = 'STATEMENT' THEN
                PERFORM pg_notify('channel_config_changed', '');
                RETURN NULL;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                PERFORM pg_notify('channel_config_changed', to_jsonb(OLD) ->> key);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                PERFORM pg_notify('channel_config_changed', to_jsonb(NEW) ->> key);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for table, key in (("channels", "name"), ("sku_map", "channel")):
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION notify_channel_config_changed('{key}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_truncated AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION notify_channel_config_changed('{key}')"
        )


def downgrade() -> None:
    for table in ("channels", "sku_map"):
        op.execute(f"DROP TRIGGER {table}_truncated ON {table}")
        op.execute(f"DROP TRIGGER {table}_changed ON {table}")
    op.execute("DROP FUNCTION notify_channel_config_changed()")
