"""Timing: of compiled calls, for the measured answers and the benchmarks, and of a job's
phases (seconds by name: data, palette, compile, train, eval, checkpoint, reporting)."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import jax
import numpy as np


def time_call(fn: Callable[..., Any], *args: Any, repeats: int = 20) -> float:
    """Median seconds of ``fn(*args)`` after one warm-up call (compilation excluded)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def add_seconds(phases: dict[str, float], name: str, seconds: float) -> None:
    """Charge ``seconds`` to the phase ``name`` of ``phases``."""
    phases[name] = phases.get(name, 0.0) + seconds


class timed:  # noqa: N801 (used as a function: ``with timed(phases, "train") as train:``)
    """Charge the seconds of a ``with`` block to the phase ``name`` of ``phases``; they stay
    readable as ``.seconds`` after the block."""

    def __init__(self, phases: dict[str, float], name: str) -> None:
        self._phases, self._name, self.seconds = phases, name, 0.0

    def __enter__(self) -> timed:
        self._start = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.seconds = time.perf_counter() - self._start
        add_seconds(self._phases, self._name, self.seconds)
