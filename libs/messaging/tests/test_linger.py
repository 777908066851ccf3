"""When a consumer waits once for more events before applying a poll."""

from __future__ import annotations

import pytest

from oms_messaging.consumer import should_linger


@pytest.mark.parametrize(
    ("held", "streaming", "expected"),
    [
        (3, True, True),  # a trickle while a stream flows: wait for a fuller transaction
        (3, False, False),  # the first events after a quiet spell: no wait at any hop
        (100, True, False),  # a full poll (a backlog) is applied at once
        (250, True, False),
        (0, True, False),  # nothing came: nothing to wait for
        (0, False, False),
    ],
)
def test_a_consumer_lingers_only_on_a_trickle_of_a_flowing_stream(
    held: int, streaming: bool, expected: bool
) -> None:
    assert should_linger(held, 100, streaming) is expected
