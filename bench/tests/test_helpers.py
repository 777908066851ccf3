"""The benchmark's pure helpers: statistics, sizes, /proc parsing, report formatting.

Fast and without a stack: ``pytest -q bench/tests`` (the benchmarks themselves never run
in ``make test``).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from bench.harness import BenchContext
from bench.kafka import Arrival, EventWatcher
from bench.procstat import parse_status_kib, peak_rss_bytes, rss_bytes
from bench.report import Result, fmt, fmt_ratio, to_markdown
from bench.scenarios.customers import phone_e164, phone_national, plan_lookups
from bench.scenarios.flashsale import interleave, reason_of
from bench.scenarios.ingest import as_csv, import_rows, parse_with_csv_module
from bench.scenarios.orders import confirmations, duplicate_confirmations
from bench.stats import evenly_spaced, percentile, rate
from customer_svc.domain.identity import normalize_phone


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input


def test_rates_and_even_samples() -> None:
    assert rate(100, 4.0) == 25.0
    assert rate(5, 0.0) is None
    assert evenly_spaced(list(range(10)), 3) == [0, 4, 9]
    assert evenly_spaced([1, 2], 5) == [1, 2]
    assert evenly_spaced([], 3) == []


def test_scaled_sizes_follow_quick_and_scale() -> None:
    full = BenchContext(quick=False, scale=0.1)
    assert full.scaled(50_000, 150) == 5_000
    assert BenchContext(quick=True, scale=0.1).scaled(50_000, 150) == 150
    assert BenchContext(quick=False, scale=0.00001).scaled(50_000, 150) == 1
    assert BenchContext(quick=False).scaled(50_000, 150) == 50_000


def test_proc_status_lines_are_read_in_kib() -> None:
    text = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
    assert parse_status_kib(text, "VmRSS") == 102_400
    assert parse_status_kib(text, "VmHWM") == 204_800
    assert parse_status_kib(text, "VmSwap") is None


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc only")
def test_this_process_has_a_resident_set_and_a_peak() -> None:
    rss, peak = rss_bytes(os.getpid()), peak_rss_bytes(os.getpid())
    assert rss is not None and peak is not None and 0 < rss <= peak


def test_a_report_shows_figure_reference_ratio_and_failed_checks() -> None:
    result = Result(scenario="demo", title="a demo", quick=True)
    result.measure("x_per_s", "x/s", 50.0, "/s", reference=200.0, reference_label="raw")
    result.measure("p50", "p50", 12.345, "ms")
    result.check("oversold", "oversold units", 1, 0)
    text = to_markdown(result)
    assert "| x/s | 50.0 /s | raw | 200.0 /s | 0.250 |" in text
    assert "| p50 | 12.3 ms | - | - | - |" in text
    assert "| oversold units | 1 | 0 | **FAIL** |" in text
    assert "Result: **FAILED**" in text
    assert result.to_json()["ratio"] == {"x_per_s": 0.25}
    assert fmt(1234567.0, "/s") == "1,234,567 /s" and fmt(None) == "n/a"
    assert fmt_ratio(None) == "n/a"


def test_flash_sale_buyers_are_interleaved_and_reasons_classified() -> None:
    order = interleave({"live": 4, "tmall": 2, "app": 2})
    assert sorted(order) == sorted(["live"] * 4 + ["tmall"] * 2 + ["app"] * 2)
    assert order[:4] != ["live"] * 4
    assert reason_of("stock_rejected (FLASH-1: channel_cap)") == "channel_cap"
    assert reason_of("stock_rejected (FLASH-1: insufficient_stock)") == "insufficient"
    assert reason_of(None) == "none"


def test_customer_lookups_use_valid_phones_and_distinct_customers() -> None:
    assert normalize_phone(phone_national(42)) == phone_e164(42)
    lookups = plan_lookups(1000, 100, random.Random(1))
    assert len({lk.customer for lk in lookups}) == 100
    assert {lk.by for lk in lookups} == {"platform_id", "phone"}
    assert lookups[0].body() == {"channel": "web", "platform_user_id": f"u{lookups[0].customer}"}


def test_the_import_file_parses_to_every_row() -> None:
    raw = as_csv(import_rows(250))
    parsed, seconds = parse_with_csv_module(raw)
    assert parsed == 250 and seconds >= 0


def test_confirmations_take_the_first_and_count_repeats() -> None:
    watcher = EventWatcher("127.0.0.1:1", "oms.orders")
    watcher.seen = {
        "a": [Arrival("OrderCreated", 1.0), Arrival("OrderConfirmed", 2.0)],
        "b": [Arrival("OrderConfirmed", 3.0), Arrival("OrderConfirmed", 4.0)],
        "c": [Arrival("OrderCreated", 1.5)],
    }
    assert confirmations(watcher, {"a", "b", "c", "d"}) == {"a": 2.0, "b": 3.0}
    assert duplicate_confirmations(watcher, {"a", "b", "c"}) == 1


def test_a_burst_shorter_than_a_second_still_draws() -> None:
    """Every point at second 0 (a quick run, one lag sample): the picture is drawn, not a
    division by zero."""
    from bench.timeline import svg

    picture = svg({"accepted": [(0.0, 50.0)]}, {"order-svc": [(0.0, 3.0)]}, "quick")
    assert picture.startswith("<svg") and "accepted" in picture
