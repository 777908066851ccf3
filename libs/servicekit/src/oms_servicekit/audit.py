"""The audit trail: who did what to which thing, the state before and after, and when.

Every service keeps one table of the same shape, ``audit_trail``, in its own database. An
operator action writes its row through :func:`record_audit` on the unit of work's
session, so the row commits or rolls back with the change it describes (a refused or
failed action leaves no row; an applied one cannot lack one).

The rows are append-only for everyone who connects as the service: a trigger refuses
every ``UPDATE``, every ``TRUNCATE``, and a ``DELETE`` of a row younger than the
retention floor (92 days, the purge's own floor), so the retention purge can still remove
old rows and nothing else can rewrite history. Only a database superuser can get round it
(by disabling triggers); run services under a role that is not one (see the README's
operations section).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from oms_messaging.context import correlation_id_var
from oms_servicekit.auth import require_role

AUDIT_TABLE = "audit_trail"
#: Rows younger than this cannot be deleted (the retention purge's floor).
AUDIT_RETENTION_FLOOR_DAYS = 92

audit_trail = Table(
    AUDIT_TABLE,
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("entity", Text, nullable=False),
    Column("entity_id", Text, nullable=False),
    Column("before", JSONB),
    Column("after", JSONB),
    Column("correlation_id", Text),
)


async def record_audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | uuid.UUID,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """One row of the audit trail, in the caller's transaction (never commits).

    ``before``/``after`` are the parts of the entity the action changed (``None``: it did
    not exist before / no longer exists after); Decimals, dates and ids are stored as
    their JSON forms.
    """
    await session.execute(
        insert(audit_trail).values(
            actor=actor,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            before=_jsonable(before),
            after=_jsonable(after),
            correlation_id=correlation_id_var.get() or None,
        )
    )


@dataclass(frozen=True)
class AuditRow:
    """One audit row to write with others (:func:`record_audits`); its correlation id is
    the one current when the entry is made, unless given."""

    actor: str
    action: str
    entity: str
    entity_id: str | uuid.UUID
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    correlation_id: str | None = field(default_factory=lambda: correlation_id_var.get() or None)


#: Many audit rows in one statement: the same text whatever the count (planned once).
_RECORD_MANY = text(
    "INSERT INTO audit_trail (actor, action, entity, entity_id, before, after, correlation_id)"
    " SELECT a, ac, e, i, b::jsonb, af::jsonb, c FROM unnest(CAST(:actors AS text[]),"
    " CAST(:actions AS text[]), CAST(:entities AS text[]), CAST(:ids AS text[]),"
    " CAST(:befores AS text[]), CAST(:afters AS text[]), CAST(:correlations AS text[]))"
    " WITH ORDINALITY AS x(a, ac, e, i, b, af, c, n) ORDER BY n"
)


async def record_audits(session: AsyncSession, entries: Sequence[AuditRow]) -> None:
    """:func:`record_audit` for many rows in one statement, in their order (a group of
    requests committed together audits each under its own actor and correlation id)."""
    if not entries:
        return
    await session.execute(
        _RECORD_MANY,
        {
            "actors": [e.actor for e in entries],
            "actions": [e.action for e in entries],
            "entities": [e.entity for e in entries],
            "ids": [str(e.entity_id) for e in entries],
            "befores": [_json_text(e.before) for e in entries],
            "afters": [_json_text(e.after) for e in entries],
            "correlations": [e.correlation_id for e in entries],
        },
    )


def _json_text(value: Mapping[str, Any] | None) -> str | None:
    """The JSON text of ``value``; None stays SQL NULL (not JSON ``null``)."""
    return None if value is None else json.dumps(_jsonable(value))


def _jsonable(value: Mapping[str, Any] | None) -> Any:
    return None if value is None else to_jsonable_python(dict(value))


# -- the schema, for each service's Alembic migration ---------------------------------

#: Statements creating the table, its indexes and the append-only guard.
CREATE_AUDIT_TRAIL: tuple[str, ...] = (
    f"""
    CREATE TABLE {AUDIT_TABLE} (
        id BIGSERIAL PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        entity TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        before JSONB,
        after JSONB,
        correlation_id TEXT
    )
    """,
    f"CREATE INDEX {AUDIT_TABLE}_entity_idx ON {AUDIT_TABLE} (entity, entity_id, id)",
    f"CREATE INDEX {AUDIT_TABLE}_at_idx ON {AUDIT_TABLE} (at)",
    f"""
    CREATE OR REPLACE FUNCTION oms_audit_trail_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE'
           AND OLD.at < now() - interval '{AUDIT_RETENTION_FLOOR_DAYS} days' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit rows are append-only (% refused on %)', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    f"""
    CREATE TRIGGER {AUDIT_TABLE}_append_only
        BEFORE UPDATE OR DELETE ON {AUDIT_TABLE}
        FOR EACH ROW EXECUTE FUNCTION oms_audit_trail_guard()
    """,
    f"""
    CREATE TRIGGER {AUDIT_TABLE}_no_truncate
        BEFORE TRUNCATE ON {AUDIT_TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION oms_audit_trail_guard()
    """,
    f"REVOKE UPDATE, DELETE, TRUNCATE ON {AUDIT_TABLE} FROM PUBLIC",
)

DROP_AUDIT_TRAIL: tuple[str, ...] = (
    f"DROP TABLE IF EXISTS {AUDIT_TABLE}",
    "DROP FUNCTION IF EXISTS oms_audit_trail_guard()",
)


def create_audit_trail() -> None:
    """Create the audit trail; call from a migration's ``upgrade()``."""
    from alembic import op

    for statement in CREATE_AUDIT_TRAIL:
        op.execute(statement)


def drop_audit_trail() -> None:
    """Drop the audit trail; call from a migration's ``downgrade()``."""
    from alembic import op

    for statement in DROP_AUDIT_TRAIL:
        op.execute(statement)


# -- reading it over HTTP ---------------------------------------------------------------


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    correlation_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    #: Pass as ``before_id`` for the next (older) page; None on the last page.
    next_before_id: int | None


def audit_router(role: str) -> APIRouter:
    """``GET /audit``: the trail, newest first, for callers holding ``role`` (in every
    auth mode: the trail names operators and may hold personal data)."""
    router = APIRouter(tags=["audit"])

    @router.get("/audit", response_model=AuditPage, dependencies=[Depends(require_role(role))])
    async def read_audit(
        request: Request,
        entity: Annotated[str | None, Query(max_length=64)] = None,
        entity_id: Annotated[str | None, Query(max_length=200)] = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
        before_id: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> AuditPage:
        query = select(audit_trail).order_by(audit_trail.c.id.desc()).limit(limit + 1)
        if entity is not None:
            query = query.where(audit_trail.c.entity == entity)
        if entity_id is not None:
            query = query.where(audit_trail.c.entity_id == entity_id)
        if actor is not None:
            query = query.where(audit_trail.c.actor == actor)
        if before_id is not None:
            query = query.where(audit_trail.c.id < before_id)
        async with request.app.state.runtime.uow() as uow:
            rows = (await uow.session.execute(query)).mappings().all()
        items = [AuditEntry.model_validate(dict(r)) for r in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(items=items, next_before_id=items[-1].id if more and items else None)

    return router
