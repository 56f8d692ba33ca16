"""XLA compiler options for the compiled train, eval and predict steps, per backend.

On XLA:CPU (jaxlib 0.10) convolutions go to YNNPACK by default, whose weight gradient is slow:
a 32×32, 24→24, 3×3 layer at batch 100 took 75–290 ms there against 12–20 ms forward, and the
CNN train step ran at 0.3–0.6× PyTorch eager. With YNNPACK fusions off, XLA runs its Eigen
convolutions, whose forward pass, input gradient and weight gradient all take 12–21 ms for that
layer, and the whole step runs ~2.5× faster (``benchmarks/conv_layers.py``, BENCHMARKS.md).
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
