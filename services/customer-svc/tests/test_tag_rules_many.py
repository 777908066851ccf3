"""A batch's customers are tagged in one evaluation, exactly as one by one: the same tags
stay, the same are added and removed, operator tags are left alone, and a customer whose
tags did not change is not announced."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from customer_svc.adapters.tables import customer_tags, customer_totals, customers, tag_rules
from customer_svc.profiles import apply_tag_rules, apply_tag_rules_many
from oms_servicekit.testing import MigratedDatabase

NOW = datetime.now(UTC)
#: big spender, already tagged; big spender, not yet; was tagged, no longer qualifies;
#: qualifies and carries the tag as an operator's; no totals at all.
CUSTOMERS = [uuid.UUID(int=500 + i) for i in range(5)]


async def seed(db: MigratedDatabase) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            tag_rules.insert().values(
                name="big", tag="vip", expression="lifetime_value > 1000", position=1
            )
        )
        for n, customer_id in enumerate(CUSTOMERS):
            await conn.execute(
                customers.insert().values(id=customer_id, display_name=f"C{n}", created_at=NOW)
            )
        for customer_id, value in zip(CUSTOMERS[:4], (5000, 2000, 10, 3000), strict=True):
            await conn.execute(
                customer_totals.insert().values(
                    customer_id=customer_id,
                    order_count=3,
                    lifetime_value=Decimal(value),
                    last_order_at=NOW,
                    channels={"web": 3},
                    complaints=0,
                )
            )
        for customer_id, source in ((CUSTOMERS[0], "rule"), (CUSTOMERS[2], "rule")):
            await conn.execute(
                customer_tags.insert().values(
                    customer_id=customer_id, tag="vip", source=source, rule="big", tagged_at=NOW
                )
            )
        await conn.execute(
            customer_tags.insert().values(
                customer_id=CUSTOMERS[3], tag="vip", source="operator", tagged_at=NOW
            )
        )


async def outcome(db: MigratedDatabase) -> dict[str, Any]:
    async with db.engine.connect() as conn:
        tags = [
            tuple(r)
            for r in await conn.execute(
                text("SELECT customer_id, tag, source FROM customer_tags ORDER BY 1, 2")
            )
        ]
    announced = sorted(
        row["envelope"].payload["customer_id"]
        for row in await db.outbox_rows()
        if row["event_type"] == "CustomerUpdated"
    )
    return {"tags": tags, "announced": announced}


async def test_a_batch_is_tagged_as_one_by_one(database: MigratedDatabase) -> None:
    await database.truncate()
    await seed(database)
    async with database.uow() as uow:
        for customer_id in CUSTOMERS:
            await apply_tag_rules(uow, customer_id)
        await uow.commit()
    one_by_one = await outcome(database)

    await database.truncate()
    await seed(database)
    async with database.uow() as uow:
        await apply_tag_rules_many(uow, CUSTOMERS)
        await uow.commit()
    batched = await outcome(database)

    assert batched == one_by_one
    assert one_by_one["announced"] == sorted(str(c) for c in CUSTOMERS[1:3])
    # The big spenders carry the rule's tag, the one below the line lost it, the
    # operator's tag stayed the operator's.
    assert one_by_one["tags"] == [
        (CUSTOMERS[0], "vip", "rule"),
        (CUSTOMERS[1], "vip", "rule"),
        (CUSTOMERS[3], "vip", "operator"),
    ]
