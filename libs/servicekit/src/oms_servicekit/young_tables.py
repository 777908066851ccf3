"""First statistics for a young database's busy tables, before autovacuum gets to them.

On a new install's first promotion day the services' tables grow from nothing to tens of
thousands of rows in minutes, and autovacuum (one visit per database a minute, shared by
every database on the server) had analyzed none of them minutes into a benchmark run.
Without statistics PostgreSQL guesses selectivities (0.5 % for ``IS NULL`` or an
equality), and the guesses chose hash joins over whole tables and the wrong partial
index. Once a table has been analyzed at all, its statistics scale with its size and
autovacuum keeps them up; so a table is analyzed here once, when it was never analyzed
and has already changed a good number of rows. Nothing else is ever touched.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

_NEVER_ANALYZED_AND_BUSY = text(
    "SELECT relname FROM pg_stat_user_tables"
    " WHERE schemaname = current_schema() AND last_analyze IS NULL"
    " AND last_autoanalyze IS NULL AND n_mod_since_analyze >= :changes"
    " ORDER BY n_mod_since_analyze DESC"
)


async def analyze_young_tables(engine: AsyncEngine, *, min_changes: int = 1000) -> list[str]:
    """``ANALYZE`` each of our tables that was never analyzed and has changed at least
    ``min_changes`` rows since it was made; the tables analyzed."""
    async with engine.connect() as conn:
        names = [
            row[0] for row in await conn.execute(_NEVER_ANALYZED_AND_BUSY, {"changes": min_changes})
        ]
        quote = conn.dialect.identifier_preparer.quote
        for name in names:
            await conn.execute(text(f"ANALYZE {quote(name)}"))
            await conn.commit()
    if names:
        log.info("first statistics taken", extra={"tables": names})
    return names
