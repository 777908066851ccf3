"""Customer persistence: channel identities, contact matching, guarded linking."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from customer_svc.adapters.tables import customers, identities
from customer_svc.domain.identity import ContactKind, ContactMatch, NormalizedIdentity

#: First key of the advisory locks that serialize resolutions sharing a phone or e-mail
#: (the second key is a hash of the contact). Other namespaces: 7300 migrations (one-key
#: form), 7301 outbox relay shards.
CONTACT_LOCK_NAMESPACE = 7302

_LOCK = text("SELECT pg_advisory_xact_lock(:ns, :key)")
_LOCK_MANY = text(
    "SELECT count(pg_advisory_xact_lock(:ns, k))"
    " FROM (SELECT unnest(CAST(:keys AS int[])) AS k ORDER BY 1) AS ordered"
)
_LINKED_MANY = text(
    "SELECT i.channel, i.platform_user_id, i.customer_id FROM identities i"
    " JOIN unnest(CAST(:channels AS text[]), CAST(:users AS text[])) AS x(c, u)"
    " ON i.channel = x.c AND i.platform_user_id = x.u"
)
#: Customers owning a phone (or e-mail) directly or through one of their identities, each
#: value looked up on its own (``LATERAL``; ``LIMIT 1`` on the lookup by primary key keeps
#: PostgreSQL from flattening it into a join): index lookups whatever the statistics say.
#: Not one join on ``a = v OR id IN (...)``, with which PostgreSQL cannot use either
#: index (200 ms a batch at 40,000 customers); not plain joins either, which a young
#: database, its tables not yet analyzed, planned as hash joins reading every customer
#: and identity once per batch (30 ms a batch during a promotion's first minutes).
_MATCHES = (
    "SELECT m.id, m.created_at, v.value FROM unnest(CAST(:values AS text[])) AS v(value)"
    " CROSS JOIN LATERAL ("
    "  SELECT c.id, c.created_at FROM customers c"
    "   WHERE c.{col} = v.value AND c.merged_into IS NULL"
    "  UNION"
    "  SELECT o.id, o.created_at FROM identities i"
    "   CROSS JOIN LATERAL (SELECT c.id, c.created_at FROM customers c"
    "    WHERE c.id = i.customer_id AND c.merged_into IS NULL LIMIT 1) o"
    "   WHERE i.{icol} = v.value"
    " ) m"
)
#: Many identities linked in one constant statement (prepared once; a multi-row VALUES
#: is compiled anew for every batch size).
_LINK_MANY = text(
    "INSERT INTO identities (channel, platform_user_id, customer_id, name, phone, email)"
    " SELECT * FROM unnest(CAST(:channels AS text[]), CAST(:users AS text[]),"
    " CAST(:customers AS uuid[]), CAST(:names AS text[]), CAST(:phones AS text[]),"
    " CAST(:emails AS text[]))"
    " ON CONFLICT (channel, platform_user_id) DO NOTHING"
    " RETURNING customer_id"
)
#: New customers in one execution (an executemany ran one statement per customer).
_CREATE_MANY = text(
    "INSERT INTO customers (id, display_name, phone_e164, email_lower)"
    " SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]),"
    " CAST(:phones AS text[]), CAST(:emails AS text[]))"
)
_PHONE_MATCHES = text(_MATCHES.format(col="phone_e164", icol="phone"))
_EMAIL_MATCHES = text(_MATCHES.format(col="email_lower", icol="email"))


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

    async def linked_many(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], uuid.UUID]:
        """:meth:`linked_customer` for many (channel, platform user id) pairs at once."""
        if not keys:
            return {}
        rows = await self._session.execute(
            _LINKED_MANY,
            {"channels": [c for c, _ in keys], "users": [u for _, u in keys]},
        )
        return {(r.channel, r.platform_user_id): r.customer_id for r in rows}

    async def lock_contacts_many(self, phones: set[str], emails: set[str]) -> None:
        """:meth:`lock_contacts` for a whole batch in one statement, in the same key order."""
        contacts = [f"phone:{p}" for p in phones] + [f"email:{e}" for e in emails]
        keys = sorted({_lock_key(c) for c in contacts})
        if keys:
            await self._session.execute(_LOCK_MANY, {"ns": CONTACT_LOCK_NAMESPACE, "keys": keys})

    async def contact_matches_many(
        self, phones: set[str], emails: set[str]
    ) -> dict[tuple[ContactKind, str], list[ContactMatch]]:
        """:meth:`contact_matches` for many phones and e-mails: (kind, value) -> matches."""
        found: dict[tuple[ContactKind, str], list[ContactMatch]] = {}
        for kind, values in (("phone", phones), ("email", emails)):
            if not values:
                continue
            rows = await self._session.execute(
                _PHONE_MATCHES if kind == "phone" else _EMAIL_MATCHES, {"values": sorted(values)}
            )
            for r in rows:
                found.setdefault((_kind(kind), r.value), []).append(
                    ContactMatch(r.id, r.created_at, _kind(kind))
                )
        return found

    async def create_customers(self, created: list[tuple[uuid.UUID, NormalizedIdentity]]) -> None:
        """:meth:`create_customer` for many in one statement."""
        if created:
            await self._session.execute(
                _CREATE_MANY,
                {
                    "ids": [customer_id for customer_id, _ in created],
                    "names": [ident.name for _, ident in created],
                    "phones": [ident.phone for _, ident in created],
                    "emails": [ident.email for _, ident in created],
                },
            )

    async def link_identities(self, links: list[tuple[NormalizedIdentity, uuid.UUID]]) -> int:
        """:meth:`link_identity` for many in one statement; how many were linked (fewer
        than asked: a concurrent resolution linked one first). Written in key order, the
        order every run uses, so two runs linking the same identities wait for each
        other instead of deadlocking."""
        if not links:
            return 0
        links = sorted(links, key=lambda link: (link[0].channel, link[0].platform_user_id))
        result = await self._session.execute(
            _LINK_MANY,
            {
                "channels": [ident.channel for ident, _ in links],
                "users": [ident.platform_user_id for ident, _ in links],
                "customers": [customer_id for _, customer_id in links],
                "names": [ident.name for ident, _ in links],
                "phones": [ident.phone for ident, _ in links],
                "emails": [ident.email for ident, _ in links],
            },
        )
        return len(result.all())

    async def contact_matches(self, phone: str | None, email: str | None) -> list[ContactMatch]:
        """Customers that share ``phone`` or ``email``, on the customer or any identity."""
        found = await self.contact_matches_many(
            {phone} if phone else set(), {email} if email else set()
        )
        return [match for matches in found.values() for match in matches]

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
