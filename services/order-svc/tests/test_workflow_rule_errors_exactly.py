"""A workflow rule set that cannot be used names the rule (by index), the field and what
is wrong, exactly: an operator fixes the rule from that message alone. Plain objects."""

from __future__ import annotations

from typing import Any

import pytest

from order_svc.domain.workflow import RuleSetError, parse_rules

GOOD: dict[str, Any] = {
    "name": "ok",
    "state": "paid",
    "condition": "total > 0",
    "action": "advance",
    "target": "reserved",
}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": " "}, "name", "a rule needs a name"),
        ({"state": "nowhere"}, "state", "unknown state 'nowhere'"),
        (
            {"state": "shipped"},
            "state",
            "rules apply in paid, reserved, confirmed, routed, not shipped",
        ),
        ({"condition": "  "}, "condition", "a rule needs a condition"),
        ({"condition": None}, "condition", "a rule needs a condition"),
        ({"reason": 5}, "reason", "the reason must be text"),
        ({"enabled": "yes"}, "enabled", "enabled must be true or false"),
        ({"target": "elsewhere"}, "target", "unknown state 'elsewhere'"),
        (
            {"state": "confirmed", "target": "shipped"},
            "target",
            "from confirmed a rule may advance to picking, routed",
        ),
        ({"action": "hold", "reason": " "}, "reason", "a hold rule needs a reason"),
        ({"action": "hold"}, "reason", "a hold rule needs a reason"),
        ({"action": "skip"}, "action", "action must be advance or hold, not 'skip'"),
    ],
)
def test_a_wrong_rule_names_its_index_field_and_problem(
    change: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(RuleSetError) as refused:
        parse_rules([{**GOOD, "name": "first"}, {**GOOD, **change}])
    assert (refused.value.index, refused.value.field, refused.value.message) == (1, field, message)
    assert str(refused.value) == message


def test_a_rule_name_used_twice_and_a_hold_rule_as_parsed() -> None:
    with pytest.raises(RuleSetError) as twice:
        parse_rules([GOOD, {**GOOD, "name": " ok "}])
    assert (twice.value.index, twice.value.field, twice.value.message) == (
        1,
        "name",
        "rule name 'ok' is used twice",
    )
    held = parse_rules([{**GOOD, "action": "hold", "reason": "check it", "enabled": False}])
    assert (held[0].action, held[0].target, held[0].reason, held[0].enabled) == (
        "hold",
        None,
        "check it",
        False,
    )
