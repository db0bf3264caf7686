"""Best-of-N timing, shared by the benchmark scripts: one definition of how long a piece of work took."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def best_of(
    run: Callable[[], T], repeats: int = 3, *, cpu: bool = False, cuda: bool = False
) -> tuple[T, float]:
    """``run`` called ``repeats`` times: (its last result, the least seconds one call took).

    Seconds are CPU seconds of this process with ``cpu`` (the measure on a shared machine), wall seconds
    otherwise; with ``cuda`` the CUDA device is synchronised around each call, so that queued kernels
    count where they belong.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    clock = time.process_time if cpu else time.perf_counter
    if cuda:
        import torch

        synchronize = torch.cuda.synchronize
    else:
        synchronize = lambda: None  # noqa: E731
    best = float("inf")
    for _ in range(repeats):
        synchronize()
        start = clock()
        result = run()
        synchronize()
        best = min(best, clock() - start)
    return result, best
