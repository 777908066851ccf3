"""The opaque key of a buyer that other services may count by (pure).

Inventory caps how many units of a SKU one customer may take in a flash sale, so it must
tell buyers apart; it has no business knowing who they are. The key is a one-way hash of
the buyer's account on the channel: stable for the same account (every order of it
counts together), meaningless outside, and free of personal data.
"""

from __future__ import annotations

import hashlib

#: Hex digits kept: 128 bits, far beyond any collision risk among a channel's buyers.
KEY_LENGTH = 32


def buyer_key(channel: str, platform_user_id: str) -> str:
    """First 32 hex digits of SHA-256 over ``"<channel>:<platform_user_id>"``.

    The channel is part of the key because a user id is only unique on its platform.
    """
    digest = hashlib.sha256(f"{channel}:{platform_user_id}".encode()).hexdigest()
    return digest[:KEY_LENGTH]
