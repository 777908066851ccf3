"""Gateway persistence: channels, the idempotency index of channel orders, the audit."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Insert, Text, delete, exists, func, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from channel_gateway.adapters.tables import (
    channel_orders,
    channels,
    deliveries,
    delivery_ids,
    pull_cursors,
    sku_map,
)
from channel_gateway.domain.config import ChannelSettings


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    secret: str
    settings: ChannelSettings = field(default_factory=ChannelSettings)


@dataclass(frozen=True)
class ChannelConfig:
    """What a webhook needs of its channel (configuration and SKU map), read together so
    a cache miss costs one statement; cached per process, so never mutated."""

    channel: Channel
    sku_map: Mapping[str, str]


@dataclass(frozen=True)
class Audit:
    """A delivery audit row to write in the same statement as the change it reports
    (one round trip instead of two on the webhook's ack path)."""

    outcome: str
    detail: str | None = None
    delivery_id: str | None = None
    topic: str | None = None

    def values(self, channel: str) -> dict[str, Any]:
        """The row's columns, cut to the sizes the audit keeps."""
        return {
            "channel": channel,
            "outcome": self.outcome,
            "detail": self.detail[:2000] if self.detail else None,
            "delivery_id": self.delivery_id[:200] if self.delivery_id else None,
            "topic": self.topic[:100] if self.topic else None,
        }


@dataclass(frozen=True)
class KnownOrder:
    """What the gateway last heard of a channel order (None: not heard, or not stored
    by older versions of the gateway)."""

    order_id: uuid.UUID
    currency: str | None
    lines: list[dict[str, Any]] | None
    paid_at: datetime | None
    cancelled_at: datetime | None
    shipping_address: dict[str, Any] | None = None
    channel_updated_at: datetime | None = None


def _channel(row: Any) -> Channel:
    try:
        settings = _parse_settings(row)
    except ValidationError:  # a row written before channels were typed
        settings = ChannelSettings()
    return Channel(row.name, row.type, row.secret, settings)


def _parse_settings(row: Any) -> ChannelSettings:
    return ChannelSettings.model_validate(
        {
            "type": row.type,
            "clock_skew_s": row.clock_skew_s,
            "split_shipment": row.split_shipment or "allow",
            "order_class_rules": row.order_class_rules or [],
            "rate_limit_per_min": row.rate_limit_per_min,
            "pull": row.pull,
        }
    )


def _settings_values(settings: ChannelSettings) -> dict[str, Any]:
    data = settings.model_dump(mode="json")
    return {
        "type": data["type"],
        "clock_skew_s": data["clock_skew_s"],
        "split_shipment": data["split_shipment"],
        "order_class_rules": data["order_class_rules"],
        "rate_limit_per_min": data["rate_limit_per_min"],
        "pull": data["pull"],
    }


#: A batch's claims in one constant statement (prepared once: a multi-row VALUES was
#: compiled anew for every batch, an eighth of the gateway's time on a promotion day).
#: The columns a claim carries, JSON ones serialized here.
_CLAIMED_COLUMNS = (
    "channel",
    "channel_order_id",
    "order_id",
    "currency",
    "lines",
    "paid_at",
    "cancelled_at",
    "shipping_address",
    "channel_updated_at",
)
_JSON_COLUMNS = frozenset({"lines", "shipping_address"})
#: Claims and the audit rows of the orders they claimed, in one statement (one round trip
#: of the webhook group commit): an audit row per claimed order, in the batch's order.
_CLAIM_AND_AUDIT_MANY = text(
    "WITH v AS (SELECT * FROM unnest("
    "CAST(:channel AS text[]), CAST(:channel_order_id AS text[]), CAST(:order_id AS uuid[]),"
    " CAST(:currency AS text[]), CAST(:lines AS text[]), CAST(:paid_at AS timestamptz[]),"
    " CAST(:cancelled_at AS timestamptz[]), CAST(:shipping_address AS text[]),"
    " CAST(:channel_updated_at AS timestamptz[]), CAST(:outcome AS text[]),"
    " CAST(:detail AS text[])) WITH ORDINALITY AS v(c, i, o, cur, l, p, x, s, u, oc, d, n)),"
    " claimed AS (INSERT INTO channel_orders (channel, channel_order_id, order_id, currency,"
    " lines, paid_at, cancelled_at, shipping_address, channel_updated_at)"
    " SELECT c, i, o, cur, l::jsonb, p, x, s::jsonb, u FROM v ORDER BY n"
    " ON CONFLICT DO NOTHING RETURNING channel, channel_order_id, order_id),"
    " audited AS (INSERT INTO deliveries (channel, outcome, detail, order_id, topic)"
    " SELECT v.c, v.oc, v.d, claimed.order_id, :topic FROM claimed"
    " JOIN v ON v.c = claimed.channel AND v.i = claimed.channel_order_id ORDER BY v.n)"
    " SELECT channel, channel_order_id, order_id FROM claimed"
)


class GatewayRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- channels ---------------------------------------------------------------------

    async def add_channel(self, channel: Channel) -> bool:
        settings = channel.settings.model_copy(update={"type": channel.type})
        result = await self._session.execute(
            pg_insert(channels)
            .values(name=channel.name, secret=channel.secret, **_settings_values(settings))
            .on_conflict_do_nothing()
            .returning(channels.c.name)
        )
        return result.first() is not None

    async def update_channel(
        self, name: str, settings: ChannelSettings, secret: str | None
    ) -> bool:
        values = _settings_values(settings)
        if secret is not None:
            values["secret"] = secret
        result = await self._session.execute(
            update(channels)
            .where(channels.c.name == name)
            .values(**values, updated_at=datetime.now(UTC))
            .returning(channels.c.name)
        )
        return result.first() is not None

    async def get_channel(self, name: str) -> Channel | None:
        row = (await self._session.execute(select(channels).where(channels.c.name == name))).first()
        return _channel(row) if row else None

    async def channel_config(self, name: str) -> ChannelConfig | None:
        """A channel and its SKU map in one statement (the map aggregated as JSON)."""
        mapping = (
            select(
                func.coalesce(
                    func.jsonb_object_agg(sku_map.c.channel_sku, sku_map.c.sku),
                    literal({}, JSONB),
                )
            )
            .where(sku_map.c.channel == channels.c.name)
            .scalar_subquery()
        )
        query = select(channels, mapping.label("sku_mapping")).where(channels.c.name == name)
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        return ChannelConfig(_channel(row), dict(row.sku_mapping))

    async def list_channels(self) -> list[Channel]:
        rows = await self._session.execute(select(channels).order_by(channels.c.name))
        return [_channel(r) for r in rows]

    async def sku_map(self, channel: str) -> dict[str, str]:
        rows = await self._session.execute(
            select(sku_map.c.channel_sku, sku_map.c.sku).where(sku_map.c.channel == channel)
        )
        return {r.channel_sku: r.sku for r in rows}

    async def replace_sku_map(self, channel: str, mapping: dict[str, str]) -> None:
        await self._session.execute(delete(sku_map).where(sku_map.c.channel == channel))
        if mapping:
            await self._session.execute(
                insert(sku_map),
                [{"channel": channel, "channel_sku": k, "sku": v} for k, v in mapping.items()],
            )

    # -- channel orders ---------------------------------------------------------------

    async def claim_channel_order(
        self,
        channel: str,
        channel_order_id: str,
        order_id: uuid.UUID,
        *,
        currency: str | None = None,
        lines: list[dict[str, Any]] | None = None,
        paid_at: datetime | None = None,
        cancelled_at: datetime | None = None,
        shipping_address: dict[str, Any] | None = None,
        channel_updated_at: datetime | None = None,
        audit: Audit | None = None,
        link_delivery: bool = False,
    ) -> uuid.UUID | None:
        """Register a channel order; None if it was registered before (a duplicate).

        The primary key (channel, channel_order_id) makes this race-free: of two
        concurrent deliveries of one order, exactly one inserts. ``audit`` is written in
        the same statement, only when this call registers the order; so is the order
        reference of ``audit.delivery_id`` when ``link_delivery`` (the caller claimed that
        delivery id in this transaction).
        """
        claimed = (
            pg_insert(channel_orders)
            .values(
                channel=channel,
                channel_order_id=channel_order_id,
                order_id=order_id,
                currency=currency,
                lines=lines,
                paid_at=paid_at,
                cancelled_at=cancelled_at,
                shipping_address=shipping_address,
                channel_updated_at=channel_updated_at,
            )
            .on_conflict_do_nothing()
            .returning(channel_orders.c.order_id)
            .cte("claimed")
        )
        query = select(claimed.c.order_id)
        if audit is not None:
            values = audit.values(channel)
            columns = [*values, "order_id"]
            rows = select(*(literal(v, Text) for v in values.values()), claimed.c.order_id)
            query = query.add_cte(insert(deliveries).from_select(columns, rows).cte("audited"))
            if link_delivery and audit.delivery_id:
                link = (
                    update(delivery_ids)
                    .where(
                        delivery_ids.c.channel == channel,
                        delivery_ids.c.delivery_id == audit.delivery_id,
                        exists(claimed.select()),
                    )
                    .values(order_id=select(claimed.c.order_id).scalar_subquery())
                )
                query = query.add_cte(link.cte("linked"))
        result = await self._session.execute(query)
        return order_id if result.first() is not None else None

    async def claim_and_audit_many(
        self, rows: list[dict[str, Any]], *, topic: str | None = None
    ) -> dict[tuple[str, str], uuid.UUID]:
        """Claim many channel orders and write each claimed order's audit row (its
        ``outcome`` and ``detail``) in one statement: the ones newly claimed, by
        (channel, channel order id)."""
        if not rows:
            return {}
        columns = (*_CLAIMED_COLUMNS, "outcome", "detail")
        unknown = set().union(*rows) - set(columns)
        if unknown:
            raise ValueError(f"claim_and_audit_many has no column for {sorted(unknown)}")
        result = await self._session.execute(
            _CLAIM_AND_AUDIT_MANY,
            {
                **{
                    column: [
                        json.dumps(r.get(column)) if column in _JSON_COLUMNS else r.get(column)
                        for r in rows
                    ]
                    for column in columns
                },
                "topic": topic,
            },
        )
        return {(r.channel, r.channel_order_id): r.order_id for r in result}

    async def order_ref_of(self, channel: str, channel_order_id: str) -> uuid.UUID | None:
        known = await self.known_order(channel, channel_order_id)
        return known.order_id if known else None

    async def known_order(
        self, channel: str, channel_order_id: str, *, for_update: bool = False
    ) -> KnownOrder | None:
        query = select(channel_orders).where(
            channel_orders.c.channel == channel,
            channel_orders.c.channel_order_id == channel_order_id,
        )
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        return KnownOrder(
            row.order_id,
            row.currency,
            row.lines,
            row.paid_at,
            row.cancelled_at,
            row.shipping_address,
            row.channel_updated_at,
        )

    async def remember(
        self,
        channel: str,
        channel_order_id: str,
        facts: dict[str, Any],
        *,
        audit: Audit,
        order_id: uuid.UUID,
        link_delivery: bool = False,
    ) -> None:
        """Store what the channel now says of an order (the columns of ``channel_orders``
        named in ``facts``), so the next delivery is compared with it; and, in the same
        statement, the audit row saying so."""
        remembered = (
            update(channel_orders)
            .where(
                channel_orders.c.channel == channel,
                channel_orders.c.channel_order_id == channel_order_id,
            )
            .values(**facts)
        )
        await self._session.execute(
            remembered.add_cte(
                self._audit_insert(channel, audit, order_id, link_delivery).cte("audited")
            )
        )

    # -- replay nonces and the audit ----------------------------------------------------

    async def claim_delivery_id(self, channel: str, delivery_id: str) -> bool:
        """True the first time a delivery id is seen on a channel; False for a replay."""
        result = await self._session.execute(
            pg_insert(delivery_ids)
            .values(channel=channel, delivery_id=delivery_id)
            .on_conflict_do_nothing()
            .returning(delivery_ids.c.delivery_id)
        )
        return result.first() is not None

    async def delivery_order(self, channel: str, delivery_id: str) -> uuid.UUID | None:
        row = (
            await self._session.execute(
                select(delivery_ids.c.order_id).where(
                    delivery_ids.c.channel == channel, delivery_ids.c.delivery_id == delivery_id
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
        *,
        delivery_id: str | None = None,
        topic: str | None = None,
        link_delivery: bool = False,
    ) -> None:
        """One audit row; with ``link_delivery``, the delivery id claimed in this
        transaction is pointed at ``order_id`` in the same statement."""
        audit = Audit(outcome, detail, delivery_id, topic)
        await self._session.execute(self._audit_insert(channel, audit, order_id, link_delivery))

    @staticmethod
    def _audit_insert(
        channel: str, audit: Audit, order_id: uuid.UUID | None, link_delivery: bool
    ) -> Insert:
        statement = insert(deliveries).values(**audit.values(channel), order_id=order_id)
        if link_delivery and audit.delivery_id:
            link = (
                update(delivery_ids)
                .where(
                    delivery_ids.c.channel == channel,
                    delivery_ids.c.delivery_id == audit.delivery_id,
                )
                .values(order_id=order_id)
            )
            statement = statement.add_cte(link.cte("linked"))
        return statement

    async def deliveries(self, channel: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self._session.execute(
            select(deliveries)
            .where(deliveries.c.channel == channel)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    # -- pull cursors -----------------------------------------------------------------

    async def pull_cursor(self, channel: str) -> datetime | None:
        row = (
            await self._session.execute(
                select(pull_cursors.c.cursor).where(pull_cursors.c.channel == channel)
            )
        ).first()
        return row.cursor if row else None

    async def save_pull_cursor(self, channel: str, cursor: datetime) -> None:
        stmt = pg_insert(pull_cursors).values(channel=channel, cursor=cursor)
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[pull_cursors.c.channel],
                set_={"cursor": cursor, "updated_at": datetime.now(UTC)},
            )
        )
