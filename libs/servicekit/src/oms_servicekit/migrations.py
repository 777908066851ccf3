"""The body of every service's Alembic ``env.py``.

Migrations run on the connection handed over by :func:`run_migrations` (inside the
advisory lock); running ``alembic`` from the command line is not needed.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData


def run_env(target_metadata: MetaData | None = None) -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "migrations run at service start-up (oms_servicekit.database.run_migrations)"
        )
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
