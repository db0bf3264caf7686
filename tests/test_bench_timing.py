"""The benchmark scripts' shared best-of-N timer."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "timing.py"
_spec = importlib.util.spec_from_file_location("bench_timing", _PATH)
_timing = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_timing)
best_of = _timing.best_of


def test_best_of_returns_the_last_result_and_the_least_time(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])  # a clock that moves only in run()
    durations_s = [3.0, 1.0, 2.0]
    calls = []

    def run():
        now[0] += durations_s[len(calls)]
        calls.append(1)
        return len(calls)

    assert best_of(run, repeats=3) == (3, 1.0)


def test_cpu_seconds_do_not_count_sleeping():
    _, seconds = best_of(lambda: time.sleep(0.05), repeats=1, cpu=True)
    assert seconds < 0.02


def test_at_least_one_call():
    with pytest.raises(ValueError, match="at least 1"):
        best_of(lambda: None, repeats=0)
