"""Reconnect delays: exponential, capped, jittered so that clients of a restarted server spread out."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator


def backoff_delays(
    first: float = 0.5, cap: float = 30.0, rand: Callable[[], float] = random.random
) -> Iterator[float]:
    """Endless delays: attempt n waits between half and all of ``min(cap, first * 2**n)``.

    "Equal jitter": never (almost) zero, so a dead server is not hammered, and
    never above ``cap``. ``rand`` returns a float in [0, 1); tests pass their own.
    """
    if first <= 0 or cap <= 0:
        raise ValueError("delays must be positive")
    ceiling = min(first, cap)
    while True:
        yield ceiling / 2 + rand() * ceiling / 2
        ceiling = min(cap, ceiling * 2)
