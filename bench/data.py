"""The records every benchmark writes, shaped like users' data: every value distinct
(a small pool would stay in the CPU cache and flatter whoever copies most) and, for keyed
cases, every key distinct.

Values are JSON-like log events: repeated field names, a unique id, varying numbers,
random letters as padding, so lz4 compresses a batch about 2:1, not the 50:1 of a
repeated constant. Generating 1,000,000 values of 100 bytes takes about a second.
"""

from __future__ import annotations

import random

_LETTERS = b"abcdefghijklmnopqrstuvwxyz0123456789"
_TO_LETTERS = bytes(_LETTERS[i % len(_LETTERS)] for i in range(256))
_EVENTS = (b"click", b"view", b"purchase", b"login", b"logout", b"search")
_GOLDEN = 0x9E3779B97F4A7C15  # odd: i -> i * _GOLDEN mod 2**64 is a bijection


def make_values(n: int, size: int, seed: int = 20261127) -> list[bytes]:
    """``n`` distinct values of ``size`` bytes (distinct for size >= 8)."""
    rng = random.Random(seed)
    noise = rng.randbytes(n * size + 64).translate(_TO_LETTERS)
    users = [rng.randrange(100_000) for _ in range(1024)]
    values = []
    for i in range(n):
        head = b'{"id":%d,"user":"u%05d","event":"%s","amount":%d.%02d,"note":"' % (
            i, users[i & 1023], _EVENTS[i % 6], (i * 7919) % 1000, i % 100)
        pad = size - len(head) - 2
        if pad >= 0:
            values.append(head + noise[i * size:i * size + pad] + b'"}')
        else:  # too small for the JSON shape: the id's bytes and random letters
            tag = b"%x" % i
            values.append((tag + noise[i * size:(i + 1) * size])[:size])
    return values


def make_keys(n: int) -> list[bytes]:
    """``n`` distinct 16-byte keys, spread over the key space as user ids are."""
    return [b"%016x" % ((i * _GOLDEN) & 0xFFFF_FFFF_FFFF_FFFF) for i in range(n)]
