"""The log scan reads only what a session wrote, and sees what it must not let pass.

Plain files in a temporary directory: a scan that could not find a planted leak, or that
judged lines an earlier session wrote, would guard nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.log_scan import SessionLogs, customer_contacts, forged_lines, personal_data

LINE = json.dumps({"level": "info", "msg": "order placed"}) + "\n"


def test_the_test_customers_contacts_are_found_in_the_tests_sources() -> None:
    contacts = customer_contacts()
    assert {"+8613800000001", "8613800000001", "13800000001"} <= contacts
    assert {"li.lei@example.com", "Li Lei", "1 Demo Road"} <= contacts
    assert "logistics@example.com" not in contacts


def test_only_what_was_written_since_the_session_began_is_read(tmp_path: Path) -> None:
    old = tmp_path / "e2e-stack" / "order-svc.log"
    old.parent.mkdir()
    old.write_text('{"msg": "li.lei@example.com"}\n')  # an earlier session's leak
    untouched = tmp_path / "e2e-other" / "notifier.log"
    untouched.parent.mkdir()
    untouched.write_text("not json from an old run\n")
    logs = SessionLogs.begin(tmp_path)
    with old.open("a") as stream:
        stream.write(LINE)
    new = tmp_path / "e2e-fuzz-stack" / "customer-svc.log"
    new.parent.mkdir()
    new.write_text(LINE)

    written = logs.written()

    assert written == {old: LINE, new: LINE}
    assert personal_data(written, {"li.lei@example.com"}, tmp_path) == []
    assert forged_lines(written, tmp_path) == []


def test_a_contact_written_this_session_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "e2e-stack" / "order-svc.log"
    log.parent.mkdir()
    log.write_text(LINE)
    logs = SessionLogs.begin(tmp_path)
    with log.open("a") as stream:
        stream.write(json.dumps({"msg": "shipping to +8613800000001"}) + "\n")

    leaks = personal_data(logs.written(), customer_contacts(), tmp_path)

    assert "e2e-stack/order-svc.log: +8613800000001" in leaks
    assert "e2e-stack/order-svc.log: 13800000001" in leaks


def test_the_fuzzers_made_up_strings_are_no_customers_but_its_lines_must_be_json(
    tmp_path: Path,
) -> None:
    logs = SessionLogs.begin(tmp_path)
    fuzzed = tmp_path / "e2e-fuzz-stack" / "customer-svc.log"
    fuzzed.parent.mkdir()
    fuzzed.write_text(json.dumps({"msg": "request rejected", "path": "/channels/Li Lei"}) + "\n")
    with fuzzed.open("a") as stream:
        stream.write("Li Lei\n")

    written = logs.written()

    assert personal_data(written, {"Li Lei"}, tmp_path) == []
    forged = forged_lines(written, tmp_path)
    assert forged == ["e2e-fuzz-stack/customer-svc.log: new line 2: Li Lei"]


def test_a_forged_line_in_a_service_log_is_reported_and_a_fake_log_may_be_plain(
    tmp_path: Path,
) -> None:
    logs = SessionLogs.begin(tmp_path)
    service = tmp_path / "e2e-stack" / "notifier.log"
    service.parent.mkdir()
    service.write_text(LINE + "=== 2026-01-01T00:00:00+00:00 starting: x\n" + "forged\n")
    (tmp_path / "e2e-stack" / "credit-bureau.log").write_text("plain text is fine here\n")

    assert forged_lines(logs.written(), tmp_path) == ["e2e-stack/notifier.log: new line 3: forged"]


def test_a_rotated_log_is_read_whole_and_a_half_line_at_the_start_is_skipped(
    tmp_path: Path,
) -> None:
    rotated = tmp_path / "order-svc.log"
    rotated.write_text(LINE * 3)
    cut = tmp_path / "inventory-svc.log"
    cut.write_text('{"msg": "half')  # an older run still writing its line
    logs = SessionLogs.begin(tmp_path)
    rotated.write_text(LINE)
    with cut.open("a") as stream:
        stream.write(' a line"}\n' + LINE)

    assert logs.written() == {rotated: LINE, cut: LINE}
