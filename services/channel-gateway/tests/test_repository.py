"""The gateway's idempotency index on a real PostgreSQL database.

What must hold: of two concurrent deliveries of one channel order, exactly one claims
it; the other learns it is a duplicate and which order the winner created.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from channel_gateway.adapters.repository import Channel, GatewayRepository
from channel_gateway.bootstrap import MIGRATIONS, SERVICE
from oms_servicekit.testing import MigratedDatabase, migrated_database


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[MigratedDatabase]:
    async with migrated_database(MIGRATIONS, "test_gateway", producer=SERVICE) as database:
        yield database


@pytest.fixture
async def db(database: MigratedDatabase) -> MigratedDatabase:
    await database.truncate()
    async with database.uow() as uow:
        await GatewayRepository(uow.session).add_channel(Channel("shopee", "shopee", "secret"))
        await uow.commit()
    return database


async def test_first_claim_wins_and_a_later_one_is_a_duplicate(db: MigratedDatabase) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    async with db.uow() as uow:
        assert await GatewayRepository(uow.session).claim_channel_order("shopee", "A1", first)
        await uow.commit()

    async with db.uow() as uow:
        repo = GatewayRepository(uow.session)
        assert await repo.claim_channel_order("shopee", "A1", second) is None
        assert await repo.order_ref_of("shopee", "A1") == first


async def test_concurrent_claims_of_one_channel_order_have_exactly_one_winner(
    db: MigratedDatabase,
) -> None:
    async def deliver(order_id: uuid.UUID) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        """What the webhook route does: claim, and on a duplicate look up the winner."""
        async with db.uow() as uow:
            repo = GatewayRepository(uow.session)
            claimed = await repo.claim_channel_order("shopee", "C-42", order_id)
            ref: uuid.UUID | None
            if claimed is not None:
                # Keep the claim uncommitted until the other delivery's INSERT is
                # blocked on it, so the two really overlap.
                await db.wait_for_lock_waiter()
                ref = claimed
            else:
                ref = await repo.order_ref_of("shopee", "C-42")
            await uow.commit()
            return claimed, ref

    ids = [uuid.uuid4(), uuid.uuid4()]
    results = await asyncio.gather(*(deliver(order_id) for order_id in ids))

    winners = [claimed for claimed, _ in results if claimed is not None]
    assert len(winners) == 1
    [winner] = winners
    assert winner in ids
    assert [ref for _, ref in results] == [winner, winner]
    async with db.uow() as uow:
        assert await GatewayRepository(uow.session).order_ref_of("shopee", "C-42") == winner
