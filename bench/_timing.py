"""Tiny timing helpers shared by the benchmarks: best-of-rounds per-call time."""

from __future__ import annotations

import time
from collections.abc import Callable


def per_call_seconds(fn: Callable[[], object], *, rounds: int = 7, min_time: float = 0.2) -> float:
    """Fastest round's mean per-call time; each round runs at least ``min_time``.

    The minimum, not the median: on a shared machine interference only ever adds
    time, so the fastest round is the best estimate of the code's own cost.
    """
    fn()  # warm up caches (schemas, keys)
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / 4:
            break
        n *= 2
    loops = max(1, int(n * (min_time / max(elapsed, 1e-9))))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - start) / loops)
    return min(samples)
