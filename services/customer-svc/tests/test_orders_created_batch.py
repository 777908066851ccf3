"""A run of OrderCreated applied set-based ends as one by one (``on_order_created``).

The run holds a returning buyer, a new buyer matched by phone to an existing customer,
one matched by e-mail through another customer's identity, two new buyers on two
channels sharing a phone (the second must join the customer the first created), the
same new buyer twice, the same order twice, a buyer close to an existing customer by
name and address (a merge proposal), and cold-chain and fragile orders (the day
tallies). Customer ids are random, so both outcomes are compared with each customer
named by the first order that resolved to it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from customer_svc.handlers import consumer_specs
from oms_contracts import Envelope, Event, make_envelope
from oms_contracts.events import Address, CustomerIdentity, OrderCreated, OrderLine
from oms_servicekit.testing import MigratedDatabase

SPEC = consumer_specs()[0]
T0 = datetime(2026, 11, 11, 1, tzinfo=UTC)


def created(
    n: int,
    channel: str,
    user: str,
    *,
    name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    line1: str = "1 Road",
    requirements: tuple[str, ...] = (),
    order_id: uuid.UUID | None = None,
) -> OrderCreated:
    return OrderCreated(
        order_id=order_id or uuid.UUID(int=1000 + n),
        channel=channel,
        channel_order_id=f"{channel}-{n}",
        customer=CustomerIdentity(platform_user_id=user, name=name, phone=phone, email=email),
        lines=[OrderLine(line_no=1, sku="SKU-1", qty=2, unit_price=Decimal("50"))],
        currency="CNY",
        total=Decimal("100"),
        shipping_address=Address(
            region="CN-SH", city="Shanghai", line1=line1, postal_code="200000"
        ),
        delivery_requirements=list(requirements),
        created_at=T0,
    )


SEED = [
    created(1, "web", "w-1", name="Li Lei", phone="+8613800000001", email="li@example.com"),
    created(
        2,
        "app",
        "a-2",
        name="Han Meimei",
        phone="+8613800000002",
        email="han@example.com",
        line1="9 Lane",
    ),
]
RUN = [
    created(10, "web", "w-1", phone="+8613800000001"),  # returning
    created(11, "tmall", "t-1", name="Lei Li", phone="+86 138 0000 0001"),  # by phone
    created(12, "live", "l-2", email="HAN@example.com"),  # by e-mail
    created(
        13, "web", "w-new", name="Zhang San", phone="+8613900000009", requirements=("cold_chain",)
    ),  # new
    created(
        14, "app", "a-new", phone="+8613900000009", requirements=("fragile", "cold_chain")
    ),  # the customer created just before
    created(15, "web", "w-new", name="Zhang San"),  # the same new buyer again
    created(13, "web", "w-new", name="Zhang San"),  # the same order again
    created(16, "tmall", "t-9", name="Han Meimei", line1="9 Lane"),  # like a-2: a proposal
    created(17, "web", "w-twin", name="Wang Wu", line1="7 Street"),  # new
    # like the customer the run created just before: a proposal for this one only (one
    # by one, the earlier customer was compared before this one existed)
    created(18, "live", "l-twin", name="Wang Wu", line1="7 Street"),
]


async def apply_one(db: MigratedDatabase, event: Event) -> None:
    envelope = make_envelope(event, producer="order-svc")
    async with db.uow() as uow:
        uow.caused_by(envelope)
        await SPEC.handlers[event.event_type](uow, envelope, event)
        await uow.commit()


async def outcome(db: MigratedDatabase, since: int) -> dict[str, Any]:
    rows = (await db.outbox_rows())[since:]
    names: dict[str, str] = {}
    for row in rows:
        if row["event_type"] == "CustomerResolved":
            payload = row["envelope"].payload
            names.setdefault(payload["customer_id"], f"C{payload['order_id'][-4:]}")
    async with db.engine.connect() as conn:
        seeded = await conn.execute(text("SELECT id FROM customers ORDER BY created_at, id"))
        for n, (cid,) in enumerate(seeded):
            names.setdefault(str(cid), f"seed-{n}")

        def name(value: Any) -> str:
            return names.get(str(value), "?")

        async def table(sql: str, *ids: int) -> list[tuple[Any, ...]]:
            out = []
            for r in await conn.execute(text(sql)):
                values = list(r)
                for i in ids:
                    values[i] = name(values[i])
                out.append(tuple(values))
            return sorted(out, key=repr)

        found = {
            "customers": await table(
                "SELECT id, display_name, phone_e164, email_lower, merged_into FROM customers", 0
            ),
            "identities": await table(
                "SELECT channel, platform_user_id, customer_id, phone, email FROM identities", 2
            ),
            "addresses": await table(
                "SELECT customer_id, address_key, postal_code FROM customer_addresses", 0
            ),
            "orders": await table(
                "SELECT order_id, customer_id, channel, total, item_count, delivery_requirements,"
                " status FROM customer_orders",
                1,
            ),
            "totals": await table(
                "SELECT customer_id, order_count, lifetime_value, last_order_at, channels,"
                " complaints FROM customer_totals",
                0,
            ),
            "tallies": await table(
                "SELECT customer_id, day, cold_chain_orders, cold_chain_items, fragile_orders,"
                " fragile_items FROM customer_day_tallies",
                0,
            ),
            "proposals": await table(
                "SELECT customer_id, candidate_id, status FROM merge_proposals", 0, 1
            ),
            "tags": await table("SELECT customer_id, tag, source FROM customer_tags", 0),
        }
    found["events"] = [
        (
            row["event_type"],
            row["envelope"].causation_id,
            {
                k: name(v) if k == "customer_id" else v
                for k, v in row["envelope"].payload.items()
                if k not in {"resolved_at", "updated_at"}
            },
        )
        for row in rows
    ]
    return found


def per_customer(events: list[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for event in events:
        grouped.setdefault(event[2]["customer_id"], []).append(event)
    return grouped


async def test_a_run_of_new_orders_resolves_as_one_by_one(database: MigratedDatabase) -> None:
    envelopes = [make_envelope(e, producer="order-svc") for e in RUN]

    await database.truncate()
    for event in SEED:
        await apply_one(database, event)
    since = len(await database.outbox_rows())
    for envelope, event in zip(envelopes, RUN, strict=True):
        async with database.uow() as uow:
            uow.caused_by(envelope)
            await SPEC.handlers[event.event_type](uow, envelope, event)
            await uow.commit()
    one_by_one = await outcome(database, since)

    await database.truncate()
    for event in SEED:
        await apply_one(database, event)
    since = len(await database.outbox_rows())
    run: list[tuple[Envelope, Event]] = list(zip(envelopes, RUN, strict=True))
    async with database.uow() as uow:
        await SPEC.batch_handlers[OrderCreated.event_type](uow, run)
        await uow.commit()
    batched = await outcome(database, since)

    for part in one_by_one:
        if part != "events":
            assert batched[part] == one_by_one[part], part
    # The same events, in the same order for each customer (the key: what a consumer
    # sees in order); the batch emits the new customers' CustomerUpdated first.
    assert per_customer(batched["events"]) == per_customer(one_by_one["events"])
    kinds = [e[0] for e in batched["events"]]
    assert kinds == sorted(kinds, key=lambda k: k != "CustomerUpdated")
    resolved = [e for e in one_by_one["events"] if e[0] == "CustomerResolved"]
    by_order = {e[2]["order_id"]: e[2]["customer_id"] for e in resolved}

    def of(n: int) -> str:
        return by_order[str(uuid.UUID(int=1000 + n))]

    assert of(11) == of(10)  # the phone match joined the returning buyer
    assert of(14) == of(13) != of(12)  # joined the customer the run created just before

    def named(n: int) -> str:  # a customer as ``outcome`` names it: by its first order here
        return f"C{str(uuid.UUID(int=1000 + n))[-4:]}"

    assert sorted(one_by_one["proposals"]) == sorted(
        [(named(16), named(12), "open"), (named(18), named(17), "open")]
    )
    assert one_by_one["tallies"]
