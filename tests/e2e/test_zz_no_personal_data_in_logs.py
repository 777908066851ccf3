"""Runs last (by name): the whole test run's service logs hold no customer's phone number,
e-mail address, name or street in clear, and every line is one JSON object (a CR or LF in
a logged value cannot have forged a line).

The customers are the ones the end-to-end tests create; their phones and e-mails are read
from the tests' own sources, so a new test customer is covered without a list to keep.
Department mailboxes that are subscription targets are not customer data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

E2E = Path(__file__).resolve().parent
NOT_CUSTOMERS = {"logistics@example.com", "warehouse@example.com", "service@example.com"}
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}")
PHONE = re.compile(r"\+\d{10,14}")
#: A person's name in the tests' order bodies ("Li Lei"; warehouses have one word).
PERSON = re.compile(r'"name": "([A-Z][a-z]+ [A-Z][a-z]+)"')
#: Our services' logs (fakes of the outside world and the broker log as they like).
SERVICES = {"order-svc", "inventory-svc", "customer-svc", "channel-gateway", "notifier"}
STREET = re.compile(r'"line1": "([^"]+)"')


def customer_contacts() -> set[str]:
    found: set[str] = set()
    for source in [E2E / "conftest.py", *E2E.glob("test_*.py")]:
        if source.name == Path(__file__).name:
            continue
        text = source.read_text()
        found |= {m for m in EMAIL.findall(text) if m not in NOT_CUSTOMERS}
        found |= set(PERSON.findall(text)) | set(STREET.findall(text))
        for phone in PHONE.findall(text):
            found |= {phone, phone.lstrip("+"), phone[-11:]}  # E.164, digits, national
    return found


def test_no_customer_phone_or_email_appears_in_any_service_log(artifacts_dir: Path) -> None:
    contacts = customer_contacts()
    assert {"+8613800000001", "li.lei@example.com", "Li Lei", "1 Demo Road"} <= contacts
    logs = sorted(artifacts_dir.rglob("*.log"))
    assert logs, "no service logs were written: nothing was scanned"
    leaks: list[str] = []
    for log in logs:
        text = log.read_text(errors="replace")
        for contact in contacts:
            if contact in text:
                leaks.append(f"{log.relative_to(artifacts_dir)}: {contact}")
    assert leaks == []


def test_every_service_log_line_is_one_json_object(artifacts_dir: Path) -> None:
    service_logs = [log for log in sorted(artifacts_dir.rglob("*.log")) if log.stem in SERVICES]
    assert service_logs, "no service logs were written: nothing was checked"
    forged: list[str] = []
    for log in service_logs:
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            # "=== <time> starting: ..." is the launcher's marker between two runs.
            if line.strip() and not line.startswith("=== ") and not _is_json_object(line):
                forged.append(f"{log.relative_to(artifacts_dir)}:{number}: {line[:120]}")
    assert forged == []


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
