"""The close-code advice and the message types, checked on fixed inputs."""

import json
import random
import re

from conftest import REPO
from ticker_client import Backoff, parse_message, reconnect_advice


def test_close_codes_follow_the_protocol_table() -> None:
    """Ranges and listed codes say what docs/protocol.md says, codes unknown today included."""
    for code in (1000, 1002, 1003, 1007, 1009, 4000, 4001, 4004, 4099):
        assert reconnect_advice(code) == "no", code
    for code in (4100, 4150, 4199):
        assert reconnect_advice(code) == "now", code
    for code in (1001, 1006, 1008, 1011, 1012, 1013, 4408, 4200, 3000):
        assert reconnect_advice(code) == "backoff", code


def test_backoff_is_full_jitter_below_a_capped_ceiling() -> None:
    """Attempt n waits in [0, min(cap, base * 2^(n-1))), never more."""
    rng = random.Random(7)
    policy = Backoff(base=0.5, cap=4.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d < ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range


def test_every_documented_server_message_parses() -> None:
    """Each `json` example of docs/protocol.md with a `type` becomes its dataclass."""
    doc = (REPO / "docs" / "protocol.md").read_text()
    examples = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", doc, re.S)]
    typed = [e for e in examples if "type" in e]
    assert len(typed) > 10
    for example in typed:
        message = parse_message(example)
        assert message is not None and message.type == example["type"], example
