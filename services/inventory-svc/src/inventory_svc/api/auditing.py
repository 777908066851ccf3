"""What inventory-svc's audit rows say: the fields an action changed, before and after.

The rows themselves are written by :func:`oms_servicekit.audit.record_audit` in the
action's own transaction; these helpers only decide their ``before``/``after``, so every
route describes its change the same way (only what changed, small enough to read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic_core import to_jsonable_python

from inventory_svc.api.schemas import WarehouseStock

#: At most this many ids are listed in a row that touches many things (the count is kept).
MAX_LISTED = 100

Fields = dict[str, Any]


def changed_fields(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], fields: Iterable[str]
) -> tuple[Fields | None, Fields] | None:
    """``(before, after)`` restricted to the ``fields`` whose value differs (``before`` is
    None when the thing did not exist), or None when nothing changed: a repeat that
    changes nothing leaves no audit row."""
    new = {f: to_jsonable_python(after.get(f)) for f in fields}
    if before is None:
        return None, new
    old = {f: to_jsonable_python(before.get(f)) for f in fields}
    diff = [f for f in new if new[f] != old[f]]
    if not diff:
        return None
    return {f: old[f] for f in diff}, {f: new[f] for f in diff}


def stock_change(
    levels_after: Sequence[WarehouseStock], on_hand_deltas: Mapping[str, int]
) -> tuple[Fields, Fields]:
    """Per warehouse touched: on hand, reserved and available before and after a movement
    that changed on hand by ``on_hand_deltas`` (reserved is untouched by receipts,
    adjustments and transfers). Derived from the rows as this transaction left them (they
    stay locked until it commits), so concurrent reservations cannot skew the figures."""
    before: Fields = {}
    after: Fields = {}
    for level in levels_after:
        delta = on_hand_deltas.get(level.warehouse)
        if delta is None:
            continue
        after[level.warehouse] = {
            "on_hand": level.on_hand,
            "reserved": level.reserved,
            "available": level.available,
        }
        before[level.warehouse] = {
            "on_hand": level.on_hand - delta,
            "reserved": level.reserved,
            "available": level.available - delta,
        }
    return before, after


def listed(ids: Sequence[str]) -> list[str]:
    """The first :data:`MAX_LISTED` of ``ids``: enough to recognise a bulk action by,
    without copying a whole document into the trail."""
    return list(ids[:MAX_LISTED])
