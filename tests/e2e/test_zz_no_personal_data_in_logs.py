"""Runs last (by name): the whole test run's service logs hold no customer's phone number
or e-mail address in clear.

The customers are the ones the end-to-end tests create; their phones and e-mails are read
from the tests' own sources, so a new test customer is covered without a list to keep.
Department mailboxes that are subscription targets are not customer data.
"""

from __future__ import annotations

import re
from pathlib import Path

E2E = Path(__file__).resolve().parent
NOT_CUSTOMERS = {"logistics@example.com", "warehouse@example.com", "service@example.com"}
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}")
PHONE = re.compile(r"\+\d{10,14}")


def customer_contacts() -> set[str]:
    found: set[str] = set()
    for source in [E2E / "conftest.py", *E2E.glob("test_*.py")]:
        if source.name == Path(__file__).name:
            continue
        text = source.read_text()
        found |= {m for m in EMAIL.findall(text) if m not in NOT_CUSTOMERS}
        for phone in PHONE.findall(text):
            found |= {phone, phone.lstrip("+"), phone[-11:]}  # E.164, digits, national
    return found


def test_no_customer_phone_or_email_appears_in_any_service_log(artifacts_dir: Path) -> None:
    contacts = customer_contacts()
    assert "+8613800000001" in contacts and "li.lei@example.com" in contacts
    logs = sorted(artifacts_dir.rglob("*.log"))
    assert logs, "no service logs were written: nothing was scanned"
    leaks: list[str] = []
    for log in logs:
        text = log.read_text(errors="replace")
        for contact in contacts:
            if contact in text:
                leaks.append(f"{log.relative_to(artifacts_dir)}: {contact}")
    assert leaks == []
