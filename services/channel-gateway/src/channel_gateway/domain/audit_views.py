"""What the audit trail says about a change of channel configuration.

The trail is read by every holder of ``channels:admin`` and kept for months, so a
channel's webhook secret and its marketplace credentials never enter it: they appear as
``***`` (set) or ``None`` (not set), and a rotation as the key changing. A SKU map can
hold 100,000 entries, so a change to one is recorded as counts plus the entries that
changed, unless too many did.
"""

from __future__ import annotations

from typing import Any

from channel_gateway.domain.config import ChannelSettings

MASK = "***"
#: Credentials inside a pull channel's configuration.
PULL_CREDENTIALS = ("app_key", "session")
#: Up to this many changed SKU mappings are listed one by one; beyond, only counted.
SKU_ENTRIES_LISTED = 100

Change = tuple[dict[str, Any], dict[str, Any]]


def channel_view(settings: ChannelSettings, *, secret: str | None) -> dict[str, Any]:
    """The channel's configuration as the trail may show it (credentials masked)."""
    view = settings.model_dump(mode="json")
    if view.get("pull") is not None:
        view["pull"] = {
            k: (MASK if v is not None and k in PULL_CREDENTIALS else v)
            for k, v in view["pull"].items()
        }
    view["secret"] = MASK if secret else None
    return view


def channel_change(
    before: ChannelSettings,
    after: ChannelSettings,
    *,
    secret_before: str,
    secret_after: str,
) -> Change | None:
    """The fields a patch changed, before and after (masked); None if it changed none.

    Fields are compared unmasked, so a rotated secret or a new marketplace session is a
    change even though both sides then read ``***``; a rotation shows as ``secret``
    going from ``***`` to ``*** (rotated)``."""
    raw_before, raw_after = before.model_dump(mode="json"), after.model_dump(mode="json")
    changed = sorted(k for k in raw_after if raw_before.get(k) != raw_after[k])
    shown_before = channel_view(before, secret=secret_before)
    shown_after = channel_view(after, secret=secret_after)
    old = {k: shown_before[k] for k in changed}
    new = {k: shown_after[k] for k in changed}
    if secret_before != secret_after:
        old["secret"], new["secret"] = MASK, f"{MASK} (rotated)"
    return (old, new) if old or new else None


def sku_map_change(before: dict[str, str], after: dict[str, str]) -> Change | None:
    """How a SKU map replacement changed the map; None if it is the same map."""
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if not keys:
        return None
    old: dict[str, Any] = {"mappings": len(before)}
    new: dict[str, Any] = {"mappings": len(after)}
    if len(keys) <= SKU_ENTRIES_LISTED:
        old["entries"] = {k: before[k] for k in keys if k in before}
        new["entries"] = {k: after[k] for k in keys if k in after}
    else:
        new["entries_changed"] = len(keys)
    return old, new
