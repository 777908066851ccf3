"""Customer persistence: channel identities, contact matching, guarded linking."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import insert, literal, or_, select, text, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from customer_svc.adapters.tables import customers, identities
from customer_svc.domain.identity import ContactKind, ContactMatch, NormalizedIdentity

#: First key of the advisory locks that serialize resolutions sharing a phone or e-mail
#: (the second key is a hash of the contact). Other namespaces: 7300 migrations (one-key
#: form), 7301 outbox relay shards.
CONTACT_LOCK_NAMESPACE = 7302

_LOCK = text("SELECT pg_advisory_xact_lock(:ns, :key)")


class CustomerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def linked_customer(self, channel: str, platform_user_id: str) -> uuid.UUID | None:
        """The customer this exact channel identity is linked to, if any."""
        row = (
            await self._session.execute(
                select(identities.c.customer_id).where(
                    identities.c.channel == channel,
                    identities.c.platform_user_id == platform_user_id,
                )
            )
        ).first()
        return row.customer_id if row else None

    async def lock_contacts(self, phone: str | None, email: str | None) -> None:
        """Serialize, until commit, resolutions that could match each other by contact.

        Without it two identities of one person on two channels, resolved at the same
        instant, would each find no match and create two customers. Locks are taken in
        a fixed order, so two resolutions never deadlock on them.
        """
        contacts = [f"phone:{phone}" if phone else None, f"email:{email}" if email else None]
        for key in sorted({_lock_key(c) for c in contacts if c is not None}):
            await self._session.execute(_LOCK, {"ns": CONTACT_LOCK_NAMESPACE, "key": key})

    async def contact_matches(self, phone: str | None, email: str | None) -> list[ContactMatch]:
        """Customers that share ``phone`` or ``email``, on the customer or any identity."""
        parts = []
        for kind, value, customer_col, identity_col in (
            ("phone", phone, customers.c.phone_e164, identities.c.phone),
            ("email", email, customers.c.email_lower, identities.c.email),
        ):
            if value is None:
                continue
            parts.append(
                select(customers.c.id, customers.c.created_at, literal(kind).label("by")).where(
                    customers.c.merged_into.is_(None),
                    or_(
                        customer_col == value,
                        customers.c.id.in_(
                            select(identities.c.customer_id).where(identity_col == value)
                        ),
                    ),
                )
            )
        if not parts:
            return []
        rows = await self._session.execute(union_all(*parts))
        return [ContactMatch(r.id, r.created_at, _kind(r.by)) for r in rows]

    async def create_customer(self, customer_id: uuid.UUID, identity: NormalizedIdentity) -> None:
        await self._session.execute(
            insert(customers).values(
                id=customer_id,
                display_name=identity.name,
                phone_e164=identity.phone,
                email_lower=identity.email,
            )
        )

    async def link_identity(self, identity: NormalizedIdentity, customer_id: uuid.UUID) -> bool:
        """Link the channel identity to ``customer_id``; False if it was linked already.

        ON CONFLICT waits for a concurrent transaction inserting the same identity and
        then does nothing if that one committed: the caller re-reads the winner.
        """
        result = await self._session.execute(
            pg_insert(identities)
            .values(
                channel=identity.channel,
                platform_user_id=identity.platform_user_id,
                customer_id=customer_id,
                name=identity.name,
                phone=identity.phone,
                email=identity.email,
            )
            .on_conflict_do_nothing(
                index_elements=[identities.c.channel, identities.c.platform_user_id]
            )
            .returning(identities.c.customer_id)
        )
        return result.first() is not None

    async def get_customer(self, customer_id: uuid.UUID) -> dict[str, Any] | None:
        row = (
            await self._session.execute(select(customers).where(customers.c.id == customer_id))
        ).first()
        return dict(row._mapping) if row else None

    async def identities_of(self, customer_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self._session.execute(
            select(identities)
            .where(identities.c.customer_id == customer_id)
            .order_by(identities.c.created_at, identities.c.channel, identities.c.platform_user_id)
        )
        return [dict(r._mapping) for r in rows]


def _lock_key(contact: str) -> int:
    """A stable signed 32-bit key for ``contact`` (the advisory lock's second key)."""
    return int.from_bytes(hashlib.sha256(contact.encode()).digest()[:4], "big", signed=True)


def _kind(value: str) -> ContactKind:
    if value == "phone":
        return "phone"
    if value == "email":
        return "email"
    raise ValueError(f"unexpected contact kind {value!r}")
