"""Pausing Python's cyclic garbage collector around work that builds many objects and leaves no cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (reference counting still frees what dies).

    For code that builds many objects that all stay alive, such as a push's records: the collector
    would find nothing to free, yet each full collection walks every object built so far again,
    which doubles the time `to_argilla_records` takes for 15,000 records.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
