"""When to reconnect: the server's close-code advice (docs/protocol.md, "Close codes") and
full-jitter exponential backoff, as the dashboard's connection does."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Advice = Literal["no", "now", "backoff"]

# A normal closure the client asked for, or a protocol violation the same client would repeat.
_FINAL_CODES = frozenset({1000, 1002, 1003, 1007, 1009})


def reconnect_advice(code: int) -> Advice:
    """What a close `code` tells a client: "no" (do not retry), "now" or "backoff".

    Read by range, so codes the server adds later are handled: 4000-4099 never retry (a token
    problem), 4100-4199 retry at once, everything else (1001, 1006, 1011, 4408, ...) backs off.
    """
    if code in _FINAL_CODES or 4000 <= code <= 4099:
        return "no"
    if 4100 <= code <= 4199:
        return "now"
    return "backoff"


@dataclass(frozen=True)
class Backoff:
    """Full jitter: attempt n (from 1) waits a random time below min(cap, base * factor^(n-1))."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        return (rng or random).random() * ceiling
