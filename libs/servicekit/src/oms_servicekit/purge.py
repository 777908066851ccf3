"""Retention purge: delete rows older than the retention period, in small batches.

Run by the retention CronJobs (deploy/k8s/base/jobs/retention-purge.yaml), one per service
database, naming the tables it may purge and each table's time column::

    python -m oms_servicekit.purge inbox:processed_at outbox:published_at audit_trail:at

Settings come from the service's environment (``DATABASE_URL``, ``DB_NAME``) plus
``OMS_RETENTION_DAYS`` (default 92) and ``OMS_RETENTION_MIN_DAYS`` (default 92, the
"at least 3 months" floor): a retention below the floor is refused, so a typo cannot wipe
the audit trail. A row whose time column is NULL is never purged (an unpublished outbox row
has no ``published_at``). Tables and columns are checked against the database's catalogue
before anything is deleted; deleting in batches keeps locks and WAL bursts small.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_servicekit.database import create_engine
from oms_servicekit.settings import ServiceSettings

log = logging.getLogger("oms.purge")

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RetentionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMS_")

    retention_days: int = 92
    retention_min_days: int = 92
    batch_size: int = 5_000


@dataclass(frozen=True)
class PurgeTarget:
    table: str
    column: str

    @classmethod
    def parse(cls, spec: str) -> PurgeTarget:
        table, sep, column = spec.partition(":")
        if not sep or not _IDENTIFIER.match(table) or not _IDENTIFIER.match(column):
            raise ValueError(f"expected TABLE:TIME_COLUMN, got {spec!r}")
        return cls(table, column)


class PurgeRefused(Exception):
    """The purge would break the retention floor or names something that does not exist."""


def cutoff_for(settings: RetentionSettings, now: datetime) -> datetime:
    if settings.retention_days < settings.retention_min_days:
        raise PurgeRefused(
            f"OMS_RETENTION_DAYS={settings.retention_days} is below the minimum "
            f"OMS_RETENTION_MIN_DAYS={settings.retention_min_days}"
        )
    return now - timedelta(days=settings.retention_days)


async def check_targets(engine: AsyncEngine, targets: list[PurgeTarget]) -> None:
    """Every table exists with a timestamp column of that name, or nothing is purged."""
    async with engine.connect() as conn:
        for target in targets:
            data_type = await conn.scalar(
                text(
                    "SELECT data_type FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND table_name = :t"
                    " AND column_name = :c"
                ),
                {"t": target.table, "c": target.column},
            )
            if data_type is None or not str(data_type).startswith("timestamp"):
                raise PurgeRefused(f"{target.table}.{target.column} is not a timestamp column")


async def purge(
    engine: AsyncEngine, targets: list[PurgeTarget], cutoff: datetime, batch_size: int
) -> dict[str, int]:
    """Delete rows older than ``cutoff`` from each target; rows deleted per table."""
    await check_targets(engine, targets)
    deleted: dict[str, int] = {}
    for target in targets:
        # Identifiers are validated above (pattern and catalogue): safe to interpolate.
        statement = text(
            f"DELETE FROM {target.table} WHERE ctid IN ("
            f" SELECT ctid FROM {target.table} WHERE {target.column} < :cutoff"
            " LIMIT :batch)"
        )
        total = 0
        while True:
            async with engine.begin() as conn:
                result = await conn.execute(statement, {"cutoff": cutoff, "batch": batch_size})
            total += result.rowcount
            if result.rowcount < batch_size:
                break
        deleted[target.table] = total
        log.info("purged", extra={"table": target.table, "rows": total, "cutoff": str(cutoff)})
    return deleted


async def _main(specs: list[str]) -> int:
    try:
        targets = [PurgeTarget.parse(spec) for spec in specs]
        retention = RetentionSettings()
        cutoff = cutoff_for(retention, datetime.now(UTC))
    except (ValueError, PurgeRefused) as exc:
        print(f"purge refused: {exc}", file=sys.stderr)
        return 2
    engine = create_engine(ServiceSettings())
    try:
        deleted = await purge(engine, targets, cutoff, retention.batch_size)
    except PurgeRefused as exc:
        print(f"purge refused: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    print(", ".join(f"{table}: {n} row(s)" for table, n in deleted.items()) or "nothing to do")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m oms_servicekit.purge")
    parser.add_argument("targets", nargs="+", metavar="TABLE:TIME_COLUMN")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    return asyncio.run(_main(args.targets))


if __name__ == "__main__":
    raise SystemExit(main())
