"""XLA compiler options for the compiled train, eval and predict steps, per backend.

On XLA:CPU (jaxlib 0.10) convolutions go to YNNPACK by default, whose weight gradient is slow:
a 32×32, 24→24, 3×3 layer at batch 100 took 75–500 ms there against 12–27 ms forward, and the
CNN train step ran at 0.3–0.6× PyTorch eager. With YNNPACK fusions off, XLA runs its Eigen
convolutions (that layer's weight gradient: 21–49 ms), and the whole train step runs 2.2–3.0×
faster (``benchmarks/conv_layers.py``, ``benchmarks/train_throughput.py``, BENCHMARKS.md).
k-means has no convolutions and is faster with YNNPACK, so the options are per step.
GPU and TPU compiles keep XLA's defaults.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

# XLA:CPU debug options for steps with convolutions: no YNNPACK fusions (see module doc).
CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.cache
def step_options(backend: str | None = None) -> dict[str, Any] | None:
    """``jax.jit(compiler_options=...)`` for a step on ``backend`` (default: JAX's default
    backend): :data:`CPU_OPTIONS` on CPU when this jaxlib knows them, else None."""
    if (backend or jax.default_backend()) != "cpu":
        return None
    try:
        jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS).lower(jnp.zeros(())).compile()
    except Exception:  # a jaxlib without the option: XLA's defaults still work, only slower
        return None
    return CPU_OPTIONS
