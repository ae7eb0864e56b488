"""Timing shared by the single-core benches (crypto, render): one call, the cyclic GC paused."""
from __future__ import annotations

import gc
import time


def timed(fn, *args) -> float:
    """Seconds taken by fn(*args), with the cyclic GC paused (its pauses would land in random rounds)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        fn(*args)
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()
