"""What the services logged during this test session, and the two rules it must keep.

Service logs are appended to, never truncated (a restarted service keeps the log of the
run that crashed), and test-artifacts/ outlives every session. A scan of whole files would
judge old runs, and be judged by them; `SessionLogs` remembers how long every log was when
the session began and reads only what was written after that.

The rules: no customer's phone number, e-mail address, name or street appears in clear,
and every line of a service log is one JSON object (a CR or LF in a logged value cannot
have forged a line). The customers are the ones the end-to-end tests create; their
contacts are read from the tests' own sources, so a new test customer is covered without
a list to keep.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

E2E = Path(__file__).resolve().parent / "e2e"
#: Department mailboxes that are subscription targets are not customer data.
NOT_CUSTOMERS = {"logistics@example.com", "warehouse@example.com", "service@example.com"}
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}")
PHONE = re.compile(r"\+\d{10,14}")
#: A person's name in the tests' order bodies ("Li Lei"; warehouses have one word).
PERSON = re.compile(r'"name": "([A-Z][a-z]+ [A-Z][a-z]+)"')
STREET = re.compile(r'"line1": "([^"]+)"')
#: Our services' logs (fakes of the outside world and the broker log as they like).
SERVICES = {"order-svc", "inventory-svc", "customer-svc", "channel-gateway", "notifier"}
#: Log directories of stacks fed random input, not customers: the API fuzzer's. Hypothesis
#: draws some of its strings from the constants of the code the test process imported
#: (the tests' own customers among them), so "Li Lei" turns up as a channel name, a
#: platform id or a URL path the fuzzer made up, and the services rightly log those.
#: Their lines must still each be one JSON object (random input is what would forge one).
RANDOM_INPUT = {"e2e-fuzz-stack"}


def customer_contacts(sources: Path = E2E) -> set[str]:
    """Every phone (as E.164, digits and national number), e-mail, name and street of a
    customer in the end-to-end tests' sources."""
    found: set[str] = set()
    for source in [sources / "conftest.py", *sources.glob("test_*.py")]:
        text = source.read_text()
        found |= {m for m in EMAIL.findall(text) if m not in NOT_CUSTOMERS}
        found |= set(PERSON.findall(text)) | set(STREET.findall(text))
        for phone in PHONE.findall(text):
            found |= {phone, phone.lstrip("+"), phone[-11:]}
    return found


@dataclass
class SessionLogs:
    """The logs under ``root`` as they were when the session began, to read later only
    what was written since (a log that shrank was rotated: it is read whole)."""

    root: Path
    sizes: dict[Path, int] = field(default_factory=dict)

    @classmethod
    def begin(cls, root: Path) -> SessionLogs:
        logs = cls(root)
        logs.sizes = (
            {log: log.stat().st_size for log in root.rglob("*.log")} if root.is_dir() else {}
        )
        return logs

    def written(self) -> dict[Path, str]:
        """The text each log gained since `begin`; logs that gained nothing are left out."""
        gained: dict[Path, str] = {}
        for log in sorted(self.root.rglob("*.log")) if self.root.is_dir() else []:
            start = self.sizes.get(log, 0)
            with log.open("rb") as stream:
                size = stream.seek(0, 2)
                if size < start:
                    start = 0
                if size == start:
                    continue
                stream.seek(max(start - 1, 0))
                data = stream.read()
            if start > 0:
                # The byte before the new text: a line cut in half at the start is the
                # tail of an older line, not a line of its own.
                data = data[1:] if data[:1] == b"\n" else data.partition(b"\n")[2]
            gained[log] = data.decode(errors="replace")
        return gained


def personal_data(written: dict[Path, str], contacts: set[str], root: Path) -> list[str]:
    """Each log and the customer contact it shows, one line each (logs of stacks fed
    random input left out, see `RANDOM_INPUT`)."""
    return [
        f"{log.relative_to(root)}: {contact}"
        for log, text in written.items()
        if not RANDOM_INPUT & set(log.relative_to(root).parts)
        for contact in sorted(contacts)
        if contact in text
    ]


def forged_lines(written: dict[Path, str], root: Path) -> list[str]:
    """Lines of our services' logs that are not one JSON object each."""
    forged: list[str] = []
    for log, text in written.items():
        if log.stem not in SERVICES:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            # "=== <time> starting: ..." is the launcher's marker between two runs.
            if line.strip() and not line.startswith("=== ") and not _is_json_object(line):
                forged.append(f"{log.relative_to(root)}: new line {number}: {line[:120]}")
    return forged


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
