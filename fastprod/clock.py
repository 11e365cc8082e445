"""The two clocks: monotonic milliseconds for timeouts, wall-clock milliseconds for
record timestamps. Code below the public API takes ``now_ms`` as an argument instead
of reading a clock, so tests can drive it with a fake time."""

import time
from typing import Callable

#: A monotonic clock in milliseconds: what the engine is given (monotonic_ms, or a
#: test's fake), instead of reading the time deep inside.
Clock = Callable[[], int]


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000
