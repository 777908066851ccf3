"""One producer per event type: a service's unit of work refuses to write an event type
another service owns, before anything reaches its outbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from oms_contracts import REGISTRY, SERVICES, NotTheOwner
from oms_contracts.events import OrderLine, OrderPaid
from oms_messaging import UnitOfWork
from oms_messaging.tables import outbox
from oms_servicekit.testing import MigratedDatabase, migrated_database

MIGRATIONS = Path(__file__).parent / "migrations"


@pytest.fixture
async def db() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, prefix="oms_owner") as database:
        yield database


def order_paid() -> OrderPaid:
    return OrderPaid(
        order_id=uuid.uuid4(),
        channel="web",
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=1, unit_price=Decimal("9.90"))],
        currency="EUR",
        total=Decimal("9.90"),
        paid_at=datetime.now(UTC),
    )


async def outbox_size(db: MigratedDatabase) -> int:
    async with db.session_factory() as session:
        return int((await session.execute(select(func.count()).select_from(outbox))).scalar_one())


@pytest.mark.parametrize("service", sorted(SERVICES - {"order-svc"}))
async def test_only_order_svc_may_write_order_paid(db: MigratedDatabase, service: str) -> None:
    async with UnitOfWork(db.session_factory, producer=service) as uow:
        with pytest.raises(NotTheOwner, match=f"{service} may not publish OrderPaid"):
            await uow.emit(order_paid())
        await uow.commit()
    assert await outbox_size(db) == 0


async def test_the_owner_writes_its_event(db: MigratedDatabase) -> None:
    async with UnitOfWork(db.session_factory, producer="order-svc") as uow:
        await uow.emit(order_paid())
        await uow.commit()
    assert await outbox_size(db) == 1


def test_every_service_owns_what_it_publishes_and_nothing_is_owned_by_two() -> None:
    owners: dict[str, set[str]] = {}
    for model in REGISTRY.models():
        owners.setdefault(model.event_type, set()).add(model.owner)
    assert all(len(o) == 1 for o in owners.values())
    assert {o for found in owners.values() for o in found} == set(SERVICES)
