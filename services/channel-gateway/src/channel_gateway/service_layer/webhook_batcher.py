"""Acknowledging webhooks in group commits: one transaction for every delivery waiting.

A webhook is answered only once its channel order and event are committed, and on a
promotion day hundreds arrive a second. Committed one by one, each cost four round trips
(begin, claim, outbox, commit) and a WAL flush, which was most of the gateway's CPU and
much of PostgreSQL's. Here the deliveries waiting together are claimed in one statement,
audited in another and published in one outbox insert (:func:`ingest_batch`), through
the shared group commit (``oms_servicekit.group_commit``): a group that fails is
committed again delivery by delivery (:func:`ingest`), so one bad delivery fails only
its own request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from channel_gateway.domain.platforms import ChannelOrder
from channel_gateway.ingest import Ingested, ingest, ingest_batch
from oms_messaging import UnitOfWork
from oms_servicekit.group_commit import GroupCommit, Submitted

UowFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@dataclass(frozen=True)
class _Delivery:
    uow: UowFactory
    channel: str
    incoming: ChannelOrder


class WebhookBatcher:
    """Group commit of webhook deliveries (at most ``max_group`` in one transaction).

    One per router, and a router serves one runtime: a group commits in the unit of
    work of its first delivery's runtime.
    """

    def __init__(self, max_group: int = 200) -> None:
        self._group: GroupCommit[_Delivery, Ingested] = GroupCommit(
            self._commit_group, self._commit_one, max_group=max_group, name="webhook-writer"
        )

    async def ingest(self, uow: UowFactory, channel: str, incoming: ChannelOrder) -> Ingested:
        """Claim, audit and publish the delivery; returns once it is committed."""
        return await self._group.submit(_Delivery(uow, channel, incoming))

    async def _commit_group(self, group: Sequence[Submitted[_Delivery]]) -> list[Ingested]:
        async with group[0].item.uow() as uow:
            results = await ingest_batch(
                uow,
                [(s.item.channel, s.item.incoming) for s in group],
                correlation_ids=[s.correlation_id for s in group],
            )
            await uow.commit()
        return results

    async def _commit_one(self, delivery: _Delivery) -> Ingested:
        async with delivery.uow() as uow:
            result = await ingest(uow, delivery.channel, delivery.incoming)
            await uow.commit()
        return result
