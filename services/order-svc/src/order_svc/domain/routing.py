"""Smart routing: which warehouse(s) fulfil an order, and why.

Pure logic over snapshots (warehouses, stock per SKU and warehouse) that order-svc keeps
from inventory-svc's events. The snapshot may be stale: routing *proposes* warehouses,
inventory-svc's guarded reservation *decides*; a pinned line that inventory cannot serve
is re-routed without that warehouse (see ``order_svc.routing``).

Rules, in order:

1. Capabilities: a requirement that names a warehouse capability (``cold_chain`` by
   default) restricts the order to warehouses having it. None left: impossible.
2. One parcel when possible: among eligible warehouses that hold every line, the best
   score wins.
3. Otherwise, when the channel allows splits: parcels are added greedily, each time the
   warehouse serving the most open lines (ties: the best score) takes every open line
   it can serve.
4. Otherwise (no split allowed, or stock runs out): for a capability-restricted order
   this is impossible; for any other order routing *defers* to inventory-svc (it picks
   warehouses itself, as before routing existed), because only it knows the live stock.

Score of a warehouse (higher is better), each part in [0, 1]:
``stock_weight * stock_fit + distance_weight * nearness + cost_weight * cheapness``, with
``stock_fit`` the share of the open units it can serve, ``nearness`` and ``cheapness``
scaled between the best and worst candidate (1 best, 0 worst or unknown).

Distance: the destination is the shipping address's region; its coordinates come from
a region table (``REGION_CENTRES``, overridable); for a region missing there the
warehouses located in that region stand in for it (their mean position). Without
either, distances are unknown and only stock and cost decide.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

#: Approximate centres (latitude, longitude) of the ISO 3166-2:CN regions, the ones the
#: demo channels ship to; extend or override through settings.
REGION_CENTRES: dict[str, tuple[float, float]] = {
    "CN-AH": (31.86, 117.28),
    "CN-BJ": (39.90, 116.40),
    "CN-CQ": (29.56, 106.55),
    "CN-FJ": (26.08, 119.30),
    "CN-GD": (23.13, 113.26),
    "CN-GS": (36.06, 103.83),
    "CN-GX": (22.82, 108.37),
    "CN-GZ": (26.65, 106.63),
    "CN-HA": (34.75, 113.63),
    "CN-HB": (30.59, 114.31),
    "CN-HE": (38.04, 114.51),
    "CN-HI": (20.04, 110.20),
    "CN-HL": (45.80, 126.53),
    "CN-HN": (28.23, 112.94),
    "CN-JL": (43.82, 125.32),
    "CN-JS": (32.06, 118.80),
    "CN-JX": (28.68, 115.86),
    "CN-LN": (41.81, 123.43),
    "CN-NM": (40.84, 111.75),
    "CN-NX": (38.49, 106.23),
    "CN-QH": (36.62, 101.78),
    "CN-SC": (30.57, 104.07),
    "CN-SD": (36.65, 117.12),
    "CN-SH": (31.23, 121.47),
    "CN-SN": (34.34, 108.94),
    "CN-SX": (37.87, 112.55),
    "CN-TJ": (39.13, 117.20),
    "CN-XJ": (43.83, 87.62),
    "CN-XZ": (29.65, 91.17),
    "CN-YN": (25.04, 102.71),
    "CN-ZJ": (30.27, 120.16),
    "CN-HK": (22.32, 114.17),
    "CN-MO": (22.20, 113.54),
    "CN-TW": (25.03, 121.57),
}

#: Requirements that only a warehouse with the capability of the same name can meet.
DEFAULT_CAPABILITY_REQUIREMENTS = frozenset({"cold_chain"})


@dataclass(frozen=True)
class Warehouse:
    code: str
    region: str
    latitude: float
    longitude: float
    capabilities: frozenset[str] = frozenset()
    #: Cost of one parcel by destination region.
    shipping_costs: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteLine:
    line_no: int
    sku: str
    qty: int


@dataclass(frozen=True)
class Weights:
    stock: float = 0.5
    distance: float = 0.3
    cost: float = 0.2


@dataclass(frozen=True)
class StockView:
    """Available units per (sku, warehouse); SKUs never seen at all are *unknown*."""

    available: Mapping[tuple[str, str], int]

    def known(self, sku: str) -> bool:
        return any(s == sku for (s, _) in self.available)

    def of(self, sku: str, warehouse: str) -> int:
        return self.available.get((sku, warehouse), 0)

    def only(self, skus: set[str]) -> StockView:
        """The view of ``skus`` alone (one order's share of a view read for many)."""
        return StockView({k: v for k, v in self.available.items() if k[0] in skus})


@dataclass(frozen=True)
class Candidate:
    """One warehouse as routing saw it: its parts and its total score."""

    warehouse: str
    score: float
    stock_fit: float
    distance_km: float | None
    shipping_cost: Decimal | None


@dataclass(frozen=True)
class Shipment:
    warehouse: str
    line_nos: tuple[int, ...]
    score: float
    distance_km: float | None
    shipping_cost: Decimal | None


@dataclass(frozen=True)
class RoutingDecision:
    """``routed`` (every line has a warehouse), ``deferred`` (inventory picks, with the
    reason) or ``impossible`` (the order cannot be served; ``reason`` says why)."""

    outcome: str
    shipments: tuple[Shipment, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    reason: str | None = None
    requirements: tuple[str, ...] = ()

    @property
    def split(self) -> bool:
        return len(self.shipments) > 1

    def warehouse_of(self) -> dict[int, str]:
        return {n: s.warehouse for s in self.shipments for n in s.line_nos}


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def destination_point(
    region: str,
    warehouses: Iterable[Warehouse],
    centres: Mapping[str, tuple[float, float]] = REGION_CENTRES,
) -> tuple[float, float] | None:
    """The region's centre; else the mean position of the warehouses in it; else None."""
    if region in centres:
        return centres[region]
    local = [(w.latitude, w.longitude) for w in warehouses if w.region == region]
    if not local:
        return None
    return (sum(p[0] for p in local) / len(local), sum(p[1] for p in local) / len(local))


def _scaled(values: dict[str, float | None]) -> dict[str, float]:
    """1 for the lowest known value, 0 for the highest (and for unknown ones)."""
    known = [v for v in values.values() if v is not None]
    if not known:
        return {k: 0.0 for k in values}
    low, high = min(known), max(known)
    return {
        k: (0.0 if v is None else 1.0 if high == low else (high - v) / (high - low))
        for k, v in values.items()
    }


def route(
    lines: list[RouteLine],
    *,
    region: str,
    requirements: Iterable[str],
    warehouses: list[Warehouse],
    stock: StockView,
    allow_split: bool = True,
    weights: Weights = Weights(),
    capability_requirements: Iterable[str] = DEFAULT_CAPABILITY_REQUIREMENTS,
    centres: Mapping[str, tuple[float, float]] = REGION_CENTRES,
    excluded: Iterable[str] = (),
) -> RoutingDecision:
    """Choose the warehouse(s) for ``lines`` shipped to ``region`` (see the module doc).

    ``excluded`` warehouses already refused this order (inventory had less than the
    snapshot said): they stay candidates on paper but serve nothing.
    """
    refused = set(excluded)
    reqs = tuple(sorted(set(requirements)))
    needed_caps = set(reqs) & set(capability_requirements)
    if not warehouses:
        return RoutingDecision("deferred", reason="no warehouse known yet", requirements=reqs)
    eligible = sorted(
        (w for w in warehouses if needed_caps <= w.capabilities), key=lambda w: w.code
    )
    if not eligible:
        caps = ", ".join(sorted(needed_caps))
        return RoutingDecision(
            "impossible", reason=f"no warehouse has the capability {caps}", requirements=reqs
        )
    unknown = sorted({ln.sku for ln in lines if not stock.known(ln.sku)})
    if unknown and not needed_caps:
        return RoutingDecision(
            "deferred", reason=f"no stock known yet for {', '.join(unknown)}", requirements=reqs
        )

    dest = destination_point(region, warehouses, centres)
    distance = {
        w.code: (None if dest is None else round(haversine_km(dest, (w.latitude, w.longitude)), 1))
        for w in eligible
    }
    cost = {w.code: w.shipping_costs.get(region) for w in eligible}
    nearness = _scaled({k: v for k, v in distance.items()})
    cheapness = _scaled({k: None if v is None else float(v) for k, v in cost.items()})
    # Units still available per (sku, warehouse) as parcels are planned; a SKU unknown to
    # the snapshot counts as available (a capability-restricted order is pinned to the
    # best eligible warehouse and inventory has the last word).
    remaining = {(ln.sku, w.code): stock.of(ln.sku, w.code) for ln in lines for w in eligible}

    def servable(line: RouteLine, wh: str, taken: dict[str, int]) -> bool:
        if wh in refused:
            return False
        if line.sku in unknown:
            return True
        return remaining[(line.sku, wh)] - taken.get(line.sku, 0) >= line.qty

    def candidate(w: Warehouse, open_lines: list[RouteLine]) -> tuple[Candidate, list[RouteLine]]:
        taken: dict[str, int] = {}
        served = []
        for line in open_lines:
            if servable(line, w.code, taken):
                taken[line.sku] = taken.get(line.sku, 0) + line.qty
                served.append(line)
        units = sum(ln.qty for ln in open_lines)
        fit = sum(ln.qty for ln in served) / units if units else 0.0
        score = (
            weights.stock * fit
            + weights.distance * nearness[w.code]
            + weights.cost * cheapness[w.code]
        )
        return Candidate(w.code, round(score, 4), round(fit, 4), distance[w.code], cost[w.code]), (
            served
        )

    first = [candidate(w, lines) for w in eligible]
    ranked = sorted(first, key=lambda c: (-c[0].score, c[0].warehouse))
    candidates = tuple(c for c, _ in ranked)
    whole = [(c, served) for c, served in ranked if len(served) == len(lines)]
    if whole:
        best = whole[0][0]
        return RoutingDecision("routed", (_shipment(best, lines),), candidates, requirements=reqs)

    if allow_split:
        open_lines = list(lines)
        shipments: list[Shipment] = []
        while open_lines:
            options = sorted(
                (candidate(w, open_lines) for w in eligible if w.code not in _used(shipments)),
                key=lambda c: (-len(c[1]), -c[0].score, c[0].warehouse),
            )
            if not options or not options[0][1]:
                break
            best, served = options[0]
            shipments.append(_shipment(best, served))
            for line in served:
                if line.sku not in unknown:
                    remaining[(line.sku, best.warehouse)] -= line.qty
            served_nos = {ln.line_no for ln in served}
            open_lines = [ln for ln in open_lines if ln.line_no not in served_nos]
        if not open_lines:
            return RoutingDecision("routed", tuple(shipments), candidates, requirements=reqs)
        short = ", ".join(sorted({ln.sku for ln in open_lines}))
        why = f"not enough stock for {short} in the eligible warehouses"
    else:
        why = "no single warehouse can serve every line and the channel does not allow splits"
    if needed_caps:
        caps = ", ".join(sorted(needed_caps))
        return RoutingDecision(
            "impossible", candidates=candidates, reason=f"{caps}: {why}", requirements=reqs
        )
    return RoutingDecision("deferred", candidates=candidates, reason=why, requirements=reqs)


def _used(shipments: list[Shipment]) -> set[str]:
    return {s.warehouse for s in shipments}


def _shipment(c: Candidate, lines: list[RouteLine]) -> Shipment:
    return Shipment(
        c.warehouse,
        tuple(sorted(ln.line_no for ln in lines)),
        c.score,
        c.distance_km,
        c.shipping_cost,
    )
