"""Chaos drill: each of the five services is killed (SIGKILL) while provably mid-work.

One stack of its own. Several rounds, in an order and at moments drawn from a seed that
is printed (``OMS_CHAOS_SEED`` replays a run). In each round a burst of webhook orders
is posted while the round's victim is watched:

- a service with consumers is killed right after its ``/metrics`` showed
  ``oms_consumer_in_flight`` > 0, i.e. a consumer transaction open with events in it
  (their offsets cannot have been committed: the runner commits after the database);
- the channel gateway (no consumer) is killed while requests of the burst are in
  flight, so some of them die with the process and the channel sends them again.

The victim is restarted as a crashed pod would be. Then, what a run without a kill would
not show: the kill landed (work in flight at the kill, requests broken by it) and the
restarted consumer read again what the dead one had not committed. Afterwards nothing
is lost or doubled: every accepted order exists exactly once in every service that
keeps it, stock is not oversold and agrees with the reservations and the ledger, the
board counted each order once, and order-svc's cross-service consistency check is empty.
Last, every event of the run is delivered once more (at-least-once for certain, not only
where a kill happened to land between a commit and its offset commit): the inboxes
absorb all of them and the checks above still hold.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from oms_contracts.topics import Topic
from oms_devstack.dburl import with_database
from oms_devstack.stack import Stack
from tests.e2e.conftest import Oms, assert_consistent, eventually, order_body
from tests.e2e.test_fault_drills import read_dead_letters

SEED_ENV = "OMS_CHAOS_SEED"
CONSUMERS = ("order-svc", "inventory-svc", "customer-svc", "notifier")
GATEWAY = "channel-gateway"
#: Orders posted per round, all at once; stock for 80 % of every order of the run.
BURST = 40
#: Channel clients posting one order after another in the gateway's round.
LANES = 8
ROUNDS = len(CONSUMERS) + 1
STOCK = ROUNDS * BURST * 4 // 5
#: How long a victim may take to show work in flight before the round fails.
WATCH_S = 30.0

_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+(\S+)$")


@pytest.fixture(scope="module")
async def chaos_stack(artifacts_dir: Path) -> AsyncIterator[Stack]:
    stack = Stack.for_tests(artifacts_dir / "e2e-chaos-stack")
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop(drop_databases=True)


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found is None or found.group(1) != name:
            continue
        sample = dict(re.findall(r'(\w+)="([^"]*)"', found.group(2)))
        if all(sample.get(k) == v for k, v in labels.items()):
            total += float(found.group(3))
    return total


async def scrape(http: httpx.AsyncClient, url: str) -> str | None:
    try:
        r = await http.get(f"{url}/metrics", timeout=2)
    except httpx.HTTPError:
        return None
    return r.text if r.status_code == 200 else None


def applied_or_duplicate(text: str) -> tuple[float, float]:
    return (
        metric(text, "oms_events_consumed_total", outcome="applied"),
        metric(text, "oms_events_consumed_total", outcome="duplicate"),
    )


async def reread(http: httpx.AsyncClient, url: str, at_least: float) -> tuple[float, float]:
    """What a restarted consumer applied and found in its inbox, once that is
    ``at_least`` events (it read again what its predecessor had in flight)."""
    deadline = time.monotonic() + 60
    while True:
        text = await scrape(http, url)
        counts = applied_or_duplicate(text or "")
        if sum(counts) >= at_least:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} read {counts} again, fewer than {at_least} in flight")
        await asyncio.sleep(0.5)


@dataclass
class Burst:
    """The channel's side: orders posted, each sent again until the gateway takes it."""

    oms: Oms
    sku: str
    accepted: dict[str, str] = field(default_factory=dict)
    in_flight: int = 0
    broken: int = 0
    posted: int = 0  # distinct orders (a body sent again counts once)

    async def post(self, body: dict[str, Any]) -> None:
        ref = body["channel_order_id"]
        self.posted += 1
        for _ in range(240):
            self.in_flight += 1
            try:
                r = await self.oms.post_order("web", body)
            except httpx.TransportError:
                r = None
                self.broken += 1
            finally:
                self.in_flight -= 1
            if r is not None and r.status_code in (200, 202):
                order_ref = str(r.json()["order_ref"])
                assert self.accepted.setdefault(ref, order_ref) == order_ref, ref
                return
            assert r is None or r.status_code in (502, 503), r.text
            await asyncio.sleep(0.25)
        raise AssertionError(f"the gateway never accepted {ref}")

    async def run(self, until: asyncio.Event | None = None) -> None:
        """BURST orders at once; or, ``until`` given, orders from LANES channel clients
        one after the other until it is set (a stream the gateway cannot finish early)."""
        if until is None:
            await asyncio.gather(*(self.post(order_body(self.sku)) for _ in range(BURST)))
            return

        async def lane() -> None:
            while not until.is_set():
                await self.post(order_body(self.sku))

        await asyncio.gather(*(lane() for _ in range(LANES)))

    def start(self, until: asyncio.Event | None = None) -> asyncio.Task[None]:
        return asyncio.create_task(self.run(until))

    def start_with_stream(self, until: asyncio.Event) -> asyncio.Task[None]:
        """BURST orders at once and, beside them, a stream until ``until`` is set."""

        async def both() -> None:
            await asyncio.gather(self.run(), self.run(until))

        return asyncio.create_task(both())


@dataclass
class Round:
    victim: str
    at_kill: float  # consumer events in flight, or gateway requests in flight
    broken: int = 0  # gateway requests the kill broke
    reread: tuple[float, float] = (0.0, 0.0)  # the restarted consumer: applied, duplicates


async def kill_mid_batch(
    stack: Stack, http: httpx.AsyncClient, victim: str, rng: random.Random
) -> float:
    """SIGKILL ``victim`` right after its metrics show a consumer transaction in flight
    (passing over a random number of such sightings first); the events in flight."""
    url = stack.url(victim)
    passes = rng.randint(0, 3)
    deadline = time.monotonic() + WATCH_S
    while time.monotonic() < deadline:
        text = await scrape(http, url)
        in_flight = metric(text or "", "oms_consumer_in_flight")
        if in_flight > 0:
            if passes == 0:
                stack.kill(victim, signal.SIGKILL)
                return in_flight
            passes -= 1
        await asyncio.sleep(rng.uniform(0, 0.01))
    raise AssertionError(f"{victim} never showed a consumer transaction in flight")


async def kill_mid_request(stack: Stack, burst: Burst, rng: random.Random) -> float:
    """SIGKILL the gateway at a random moment while requests of ``burst`` are in flight:
    once a random number of this round's posts (1 to BURST/2) is accepted. Counted in
    posts, not time: a gateway that commits webhooks in groups takes a burst in a fraction
    of a second."""
    accepted_first = len(burst.accepted) + rng.randint(1, BURST // 2)
    deadline = time.monotonic() + WATCH_S
    while len(burst.accepted) < accepted_first or burst.in_flight == 0:
        assert time.monotonic() < deadline, "no request in flight at the gateway"
        await asyncio.sleep(0.001)
    in_flight = burst.in_flight
    stack.kill(GATEWAY, signal.SIGKILL)
    return in_flight


class Databases:
    """Read-only queries on the stack's databases (what each service keeps)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def fetch(self, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        url = with_database(self.stack.database_url, self.stack.db_name(service))
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


async def test_every_service_killed_mid_batch_loses_and_doubles_nothing(
    chaos_stack: Stack, http: httpx.AsyncClient
) -> None:
    seed = int(os.environ.get(SEED_ENV) or random.randrange(2**32))
    print(f"\nchaos drill: {SEED_ENV}={seed}")
    rng = random.Random(seed)
    victims = [*CONSUMERS, GATEWAY]
    rng.shuffle(victims)

    oms = Oms(chaos_stack, http)
    await oms.setup_catalogue()
    sku = await oms.new_sku({"WH-SH": STOCK})
    burst = Burst(oms, sku)
    rounds: list[Round] = []

    for victim in victims:
        broken_before = burst.broken
        if victim == GATEWAY:
            stream = asyncio.Event()
            posting = burst.start(until=stream)
            at_kill = await kill_mid_request(chaos_stack, burst, rng)
            stream.set()  # the posts the kill broke are sent again until taken
        else:
            # The burst, and a stream behind it until the kill: a consumer that applies a
            # whole poll per transaction can finish a burst in a few transactions, before
            # the watcher has seen one in flight.
            stream = asyncio.Event()
            posting = burst.start_with_stream(stream)
            at_kill = await kill_mid_batch(chaos_stack, http, victim, rng)
            stream.set()
        assert await chaos_stack.wait_exit(victim, timeout_s=10) is not None
        await asyncio.sleep(rng.uniform(0, 1.0))
        await chaos_stack.start_service(victim)
        await posting
        done = Round(victim, at_kill, broken=burst.broken - broken_before)
        if victim != GATEWAY:
            # The restarted consumer starts from the last committed offsets: the events the
            # dead one had in flight are read again (applied anew, or found in the inbox).
            done.reread = await reread(http, chaos_stack.url(victim), at_kill)
        rounds.append(done)
        print(f"chaos drill round: {done}")

    # The kills landed: every victim was mid-work, and the gateway's kill broke requests.
    assert all(r.at_kill > 0 for r in rounds), rounds
    [gateway_round] = [r for r in rounds if r.victim == GATEWAY]
    assert gateway_round.broken > 0, "the gateway's kill broke no request"
    assert all(sum(r.reread) >= r.at_kill for r in rounds if r.victim != GATEWAY), rounds

    await assert_nothing_lost_or_doubled(chaos_stack, oms, burst)
    await assert_consistent(oms, timeout=90)

    # At-least-once for certain: every event of the run delivered once more (what a crash
    # between a consumer's commit and its offset commit does to a part of them). The
    # inboxes absorb them all: still nothing doubled.
    notifier = chaos_stack.url("notifier")  # reads every topic
    before = applied_or_duplicate(await scrape(http, notifier) or "")
    replayed = await replay_every_topic(chaos_stack.kafka_bootstrap)
    print(f"chaos drill: {replayed} events delivered again")
    await until_caught_up(http, chaos_stack)
    await assert_nothing_lost_or_doubled(chaos_stack, oms, burst)
    after = applied_or_duplicate(await scrape(http, notifier) or "")
    # ...and it was the inboxes that absorbed them (the domain's own idempotence is not
    # what this asserts): every replayed event was found in notifier's inbox.
    assert after[1] - before[1] >= replayed, (before, after)
    # Nothing was parked: a redelivery the inbox did not absorb would be refused by the
    # domain (an order twice, a reservation twice) and end up on a dead-letter topic.
    dead = await read_dead_letters(chaos_stack.kafka_bootstrap)
    assert dead == [], [d[:120] for d in dead]


async def replay_every_topic(bootstrap: str) -> int:
    """Publish every message of every topic once more, same key and value."""
    reader = AIOKafkaConsumer(
        *(t.value for t in Topic),
        bootstrap_servers=bootstrap,
        group_id=f"chaos-replay-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await reader.start()
    messages: list[ConsumerRecord[bytes, bytes]] = []
    try:
        quiet = 0
        while quiet < 4:  # everything first: what is sent again must not be read again
            batch = await reader.getmany(timeout_ms=500, max_records=2000)
            got = [m for msgs in batch.values() for m in msgs]
            messages += got
            quiet = 0 if got else quiet + 1
    finally:
        await reader.stop()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(m.topic, m.value, key=m.key, headers=list(m.headers))
            for m in messages
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(messages)


async def until_caught_up(http: httpx.AsyncClient, stack: Stack) -> None:
    """Until every consumer of every service has read its topics to the end (twice in a
    row, a second apart: the high watermarks are the ones its last fetch saw)."""
    deadline = time.monotonic() + 90
    calm = 0
    while calm < 2:
        texts = [await scrape(http, stack.url(name)) for name in CONSUMERS]
        lag = sum(metric(t or "", "oms_consumer_lag") for t in texts)
        calm = calm + 1 if all(texts) and lag == 0 else 0
        assert time.monotonic() < deadline, f"consumers still {lag} messages behind"
        await asyncio.sleep(1.0)


async def assert_nothing_lost_or_doubled(stack: Stack, oms: Oms, burst: Burst) -> None:
    db = Databases(stack)
    channel_ids = list(burst.accepted)
    order_ids = list(burst.accepted.values())
    assert len(channel_ids) == burst.posted  # every order posted was taken, once
    assert burst.posted > STOCK  # demand above the stock: it must end used exactly
    assert len(set(order_ids)) == len(order_ids), "two channel orders got one order"

    async def states() -> list[asyncpg.Record]:
        return await db.fetch(
            "order-svc",
            "SELECT channel_order_id, id::text AS id, state FROM orders"
            " WHERE channel_order_id = ANY($1::text[])",
            channel_ids,
        )

    def settled(rows: list[asyncpg.Record]) -> bool:
        return len(rows) >= len(channel_ids) and all(
            r["state"] in ("routed", "exception") for r in rows
        )

    rows = await eventually(states, settled, timeout=120, interval=1.0)
    # Every accepted order exactly once, under the id the gateway answered with.
    assert sorted((r["channel_order_id"], r["id"]) for r in rows) == sorted(burst.accepted.items())
    routed = {r["id"] for r in rows if r["state"] == "routed"}
    assert len(routed) == STOCK, "stock not used exactly: oversold, or a reservation lost"

    # inventory-svc: one held reservation per routed order, stock and ledger agree.
    held = await db.fetch(
        "inventory-svc",
        "SELECT order_id::text AS order_id, count(*) AS n, sum(qty) AS qty FROM reservations"
        " WHERE sku = $1 AND state = 'reserved' GROUP BY order_id",
        burst.sku,
    )
    assert {r["order_id"] for r in held} == routed
    assert all((r["n"], r["qty"]) == (1, 1) for r in held)
    [level] = await db.fetch(
        "inventory-svc",
        "SELECT sum(on_hand) AS on_hand, sum(reserved) AS reserved FROM stock WHERE sku = $1",
        burst.sku,
    )
    assert (level["on_hand"], level["reserved"]) == (STOCK, STOCK)
    unbalanced = await db.fetch(
        "inventory-svc",
        "SELECT s.sku, s.warehouse FROM stock s LEFT JOIN ("
        "  SELECT sku, warehouse, sum(delta_on_hand) AS on_hand, sum(delta_reserved) AS reserved"
        "  FROM ledger GROUP BY sku, warehouse) l USING (sku, warehouse)"
        " WHERE (s.on_hand, s.reserved) IS DISTINCT FROM (l.on_hand, l.reserved)",
    )
    assert unbalanced == [], f"stock rows the ledger does not sum to: {unbalanced}"

    async def kept(service: str, sql: str) -> list[asyncpg.Record]:
        """The rows ``service`` keeps for the accepted orders, once it has one for each;
        fails naming how many it lost."""
        deadline = time.monotonic() + 60
        while True:
            got = await db.fetch(service, sql, order_ids)
            if len(got) >= len(order_ids):
                return got
            if time.monotonic() > deadline:
                missing = set(order_ids) - {str(r["order_id"]) for r in got}
                raise AssertionError(
                    f"{service} lost {len(missing)} of {len(order_ids)} accepted orders,"
                    f" e.g. {sorted(missing)[:3]}"
                )
            await asyncio.sleep(1.0)

    # customer-svc: each order recorded once, and counted once in its customer's totals.
    recorded = await kept(
        "customer-svc",
        "SELECT order_id FROM customer_orders WHERE order_id::text = ANY($1::text[])",
    )
    assert len(recorded) == len(order_ids)
    [totals] = await db.fetch(
        "customer-svc",
        "SELECT (SELECT sum(order_count) FROM customer_totals) AS counted,"
        " (SELECT count(*) FROM customer_orders) AS recorded",
    )
    assert totals["counted"] == totals["recorded"], dict(totals)

    # notifier: each order on the board once, and counted once in the throughput. A row
    # counts once its OrderCreated is applied: another order event (a CustomerResolved,
    # a StockReserved from another topic) may create the row first, blank.
    boarded = await kept(
        "notifier",
        "SELECT order_id FROM board_orders"
        " WHERE created_at IS NOT NULL AND order_id::text = ANY($1::text[])",
    )
    assert len(boarded) == len(order_ids)
    [board] = await db.fetch(
        "notifier",
        "SELECT (SELECT sum(orders) FROM board_throughput) AS counted,"
        " (SELECT count(*) FROM board_orders) AS boarded",
    )
    assert board["counted"] == board["boarded"], dict(board)
