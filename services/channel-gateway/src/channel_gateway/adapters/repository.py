"""Gateway persistence: channels, the idempotency index of channel orders, the audit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from channel_gateway.adapters.tables import channel_orders, channels, deliveries


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    secret: str


class GatewayRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_channel(self, channel: Channel) -> bool:
        result = await self._session.execute(
            pg_insert(channels)
            .values(name=channel.name, type=channel.type, secret=channel.secret)
            .on_conflict_do_nothing()
            .returning(channels.c.name)
        )
        return result.first() is not None

    async def get_channel(self, name: str) -> Channel | None:
        row = (await self._session.execute(select(channels).where(channels.c.name == name))).first()
        return Channel(row.name, row.type, row.secret) if row else None

    async def list_channels(self) -> list[Channel]:
        rows = await self._session.execute(select(channels).order_by(channels.c.name))
        return [Channel(r.name, r.type, r.secret) for r in rows]

    async def claim_channel_order(
        self, channel: str, channel_order_id: str, order_id: uuid.UUID
    ) -> uuid.UUID | None:
        """Register a channel order; None if it was registered before (a duplicate).

        The primary key (channel, channel_order_id) makes this race-free: of two
        concurrent deliveries of one order, exactly one inserts.
        """
        result = await self._session.execute(
            pg_insert(channel_orders)
            .values(channel=channel, channel_order_id=channel_order_id, order_id=order_id)
            .on_conflict_do_nothing()
            .returning(channel_orders.c.order_id)
        )
        return order_id if result.first() is not None else None

    async def order_ref_of(self, channel: str, channel_order_id: str) -> uuid.UUID | None:
        row = (
            await self._session.execute(
                select(channel_orders.c.order_id).where(
                    channel_orders.c.channel == channel,
                    channel_orders.c.channel_order_id == channel_order_id,
                )
            )
        ).first()
        return row.order_id if row else None

    async def record_delivery(
        self,
        channel: str,
        outcome: str,
        detail: str | None = None,
        order_id: uuid.UUID | None = None,
    ) -> None:
        await self._session.execute(
            insert(deliveries).values(
                channel=channel, outcome=outcome, detail=detail, order_id=order_id
            )
        )
