"""The operations board in a real browser, against the whole stack.

Headless Chromium (Debian's ``chromium``, driven by Playwright through its executable
path; Playwright's own browser download is never used) opens notifier's board while
orders are posted to the gateway, and sees the counts change, an SLA countdown, an
exception appear and an alert acknowledged. Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from oms_contracts import make_envelope, topic_for
from oms_contracts.events import SlaAtRisk
from tests.e2e.conftest import Oms, eventually, order_body

CHROMIUM = Path(os.environ.get("OMS_CHROMIUM", "/usr/bin/chromium"))
OPERATOR = "e2e-board-operator"
#: How long the page may take to show what the stack did (polled, not a timing check).
SHOW_MS = 45_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM}: `make test` as root installs Debian's chromium "
    "(apt-get install -y chromium); or set OMS_CHROMIUM to a Chromium binary",
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def publish(bootstrap: str, event: SlaAtRisk) -> None:
    """Put ``event`` on its topic as a service's outbox relay would."""
    envelope = make_envelope(event, producer="e2e-test")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_for(envelope.event_type).value,
            value=envelope.model_dump_json().encode(),
            key=envelope.key.encode(),
            headers=[("event_type", envelope.event_type.encode())],
        )
    finally:
        await producer.stop()


async def page_to(page: Page, pager: str, entry: Locator) -> None:
    """Page list ``pager`` (older pages) until ``entry`` shows: the stack is shared by the
    e2e session, so earlier tests' rows may come first. Fails after ``SHOW_MS``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHOW_MS / 1000
    while not await entry.count():
        if loop.time() > deadline:
            raise AssertionError(f"{entry} not shown in list {pager} in {SHOW_MS} ms")
        older = page.locator(f'.pager[data-list="{pager}"] button').last
        if await older.is_enabled():
            await older.click()
        await page.wait_for_timeout(200)


async def total_orders(page: Page) -> int:
    return int(await page.locator("#total-orders").inner_text())


async def test_the_board_follows_the_stack_live(
    oms: Oms, browser: Browser, kafka_bootstrap: str, artifacts_dir: Path
) -> None:
    plenty = await oms.new_sku({"WH-SH": 100})
    scarce = await oms.new_sku({"WH-SH": 1})

    page = await browser.new_page(viewport={"width": 1500, "height": 1100})
    console_errors: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    await page.goto(f"{oms.notifier}/board")
    await page.fill("#operator", OPERATOR)
    await page.press("#operator", "Tab")  # "change": the page remembers the operator
    await expect(page.locator("#live")).to_have_text("live", timeout=SHOW_MS)
    await expect(page.locator("#counts tbody tr")).not_to_have_count(0, timeout=SHOW_MS)
    before = await total_orders(page)

    # Orders posted to the gateway: the counts on the open page go up by themselves.
    refs = []
    for _ in range(3):
        response = await oms.post_order("app", order_body(plenty))
        assert response.status_code == 202, response.text
        refs.append(response.json()["order_ref"])
    await page.wait_for_function(
        "n => Number(document.getElementById('total-orders').textContent) >= n",
        arg=before + 3,
        timeout=SHOW_MS,
    )
    await expect(page.locator('td[data-channel-total="app"]')).to_be_visible()
    # They move on (confirmed or later): a state other than "received" counts them.
    moved_on = await eventually(
        lambda: oms.find_order(refs[-1]), lambda o: o["state"] not in (None, "received")
    )
    cell = f'td[data-state="{moved_on["state"]}"][data-channel="app"]'
    await page.wait_for_function(
        "css => Number(document.querySelector(css)?.textContent || 0) >= 1",
        arg=cell,
        timeout=SHOW_MS,
    )
    assert await page.locator("#sparkline polyline").count() == 1

    # An SLA warning for one of them (raised through the real broker): a countdown.
    deadline = datetime.now(UTC) + timedelta(minutes=10)
    await publish(
        kafka_bootstrap,
        SlaAtRisk(
            order_id=uuid.UUID(refs[0]),
            channel="app",
            order_class="standard",
            stage="ship",
            deadline=deadline,
            raised_at=datetime.now(UTC),
        ),
    )
    countdown = page.locator(f'#sla-list li[data-order-id="{refs[0]}"] .countdown')
    await page_to(page, "sla", countdown)
    await expect(countdown).to_have_text(re.compile(r"^\d+m \d\ds left$"), timeout=SHOW_MS)
    # order-svc's running clocks render with countdowns too, when it serves /sla/open.
    clocks = await oms.http.get(f"{oms.orders}/sla/open", params={"limit": 1})
    if clocks.status_code == 200 and clocks.json()["total"] > 0:
        await expect(page.locator("#clock-list .countdown").first).to_have_text(
            re.compile(r"(left|overdue)"), timeout=SHOW_MS
        )

    # An order the stock cannot serve: it appears in the exception queue, linked.
    response = await oms.post_order("app", order_body(scarce, qty=5))
    assert response.status_code == 202, response.text
    rejected = response.json()["order_ref"]
    entry = page.locator(f'#exception-list li[data-order-id="{rejected}"]')
    await page_to(page, "exceptions", entry)
    await expect(entry).to_have_attribute("data-cause", "stock_rejected", timeout=SHOW_MS)
    await expect(page.locator('#causes [data-cause="stock_rejected"]')).to_be_visible()

    # ... and raised an alert, which the operator acknowledges from the board.
    alert = page.locator(f'#alert-list li[data-subject="{rejected}"]')
    await expect(alert).to_have_count(1, timeout=SHOW_MS)
    alert_id = await alert.get_attribute("data-alert-id")
    await page.screenshot(path=str(artifacts_dir / "board.png"), full_page=True)
    await alert.locator("button.ack").click()
    await expect(page.locator(f'#alert-list li[data-alert-id="{alert_id}"]')).to_have_count(
        0, timeout=SHOW_MS
    )
    acked = await oms.http.get(f"{oms.notifier}/alerts", params={"state": "acknowledged"})
    assert acked.status_code == 200, acked.text
    [stored] = [a for a in acked.json() if a["id"] == alert_id]
    assert stored["acknowledged_by"] == OPERATOR
    assert await page.locator("#ack-error").is_hidden()
    await page.screenshot(path=str(artifacts_dir / "board-after-ack.png"), full_page=True)

    # The queue links to the order's page: its timeline shows how it got there.
    await entry.locator("a.order-link").click()
    await page.wait_for_url(f"**/board/orders/{rejected}")
    timeline = page.locator("#order-timeline")
    await expect(timeline).to_contain_text("→ exception", timeout=SHOW_MS)
    await expect(page.locator('#order-summary [data-fact="state"]')).to_have_text("exception")
    await expect(page.locator("#order-customer")).not_to_be_empty()
    await expect(page.locator("#order-picklist")).not_to_be_empty()
    await page.screenshot(path=str(artifacts_dir / "board-order.png"), full_page=True)

    assert failed == [] and console_errors == []
