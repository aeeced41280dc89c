"""Python's cycle collector paused while many small records are built at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: the records a rescore chunk or a month's report builds
    (hundreds of thousands of findings, 1.6 million transcript lines) form no cycles, reference
    counting frees them, and each collection would walk all of them built so far (half of a
    points-only rescore's time; 1.9 µs a line's evidence record instead of 0.4 µs on a month)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
