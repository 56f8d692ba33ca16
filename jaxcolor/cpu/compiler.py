"""XLA compiler options for the compiled train, eval and predict steps, per backend.

On XLA:CPU (jaxlib 0.10) convolutions go to YNNPACK by default, whose weight gradient is slow
enough that the CNN's train step ran slower than PyTorch eager. With YNNPACK fusions off, XLA
runs its Eigen convolutions and the whole train step is several times faster (BENCHMARKS.md,
"XLA:CPU's default convolutions (YNNPACK) against jaxcolor's compiler options").
k-means has no convolutions and is faster with YNNPACK, so the options are per step.
One-off measurements (run once, not part of training) also compile with XLA's backend
optimisation off: their compile time is their cost (q3's gradient norms of two fresh models,
also merged into one program; same values within float rounding, tested; BENCHMARKS.md, "After
training: quality metrics and gradient norms").
Training's own programs keep the default level: at level 0 a lecun-initialised state already
differs in the last bit, and a train step at level 2 computes other last bits. A model's initial
state is the same to the bit at level 2 as at the default 3 (UNet, CNN and unet_transpose, both
initialisers; the UNet's is tested), and level 3 is most of its compile time, so state
initialisation compiles at level 2. Both also emit their fusions with XLA:CPU's LLVM emitters
instead of its MLIR fusion emitters, which build an MLIR module per fusion: with the same bits,
faster again. Train steps keep the MLIR emitters: with the LLVM ones they compute other last
bits and run slower (BENCHMARKS.md, "XLA:CPU's compile options: initial states, the epoch order,
train steps").
GPU and TPU compiles keep XLA's defaults.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

# XLA:CPU debug options for steps with convolutions: no YNNPACK fusions (see module doc).
CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
# Fusions compiled by the LLVM emitters (an option newer jaxlibs may drop: then left out).
LLVM_EMITTERS = {"xla_cpu_use_fusion_emitters": False}
# ... and for programs that run once: no LLVM optimisation passes.
ONE_SHOT_CPU_OPTIONS = {**CPU_OPTIONS, "xla_backend_optimization_level": 0}
# ... and for a model's initial state: LLVM's default level instead of XLA's aggressive one.
INIT_CPU_OPTIONS = {**CPU_OPTIONS, "xla_backend_optimization_level": 2}


@functools.cache
def step_options(backend: str | None = None) -> dict[str, Any] | None:
    """``jax.jit(compiler_options=...)`` for a step on ``backend`` (default: JAX's default
    backend): :data:`CPU_OPTIONS` on CPU when this jaxlib knows them, else None."""
    return _if_known(CPU_OPTIONS, backend)


@functools.cache
def one_shot_options(backend: str | None = None) -> dict[str, Any] | None:
    """Like :func:`step_options`, for a program that runs once: :data:`ONE_SHOT_CPU_OPTIONS` and
    :data:`LLVM_EMITTERS` on CPU (else the step options)."""
    return _fastest_known(ONE_SHOT_CPU_OPTIONS, backend) or step_options(backend)


@functools.cache
def init_options(backend: str | None = None) -> dict[str, Any] | None:
    """Like :func:`step_options`, for the program that builds a model's initial state:
    :data:`INIT_CPU_OPTIONS` and :data:`LLVM_EMITTERS` on CPU (the same values, compiled faster;
    else the step options)."""
    return _fastest_known(INIT_CPU_OPTIONS, backend) or step_options(backend)


def _fastest_known(options: dict[str, Any], backend: str | None) -> dict[str, Any] | None:
    """``options`` with :data:`LLVM_EMITTERS` if this jaxlib knows them, else ``options`` alone
    if it knows those (see :func:`_if_known`)."""
    return _if_known({**options, **LLVM_EMITTERS}, backend) or _if_known(options, backend)


def _if_known(options: dict[str, Any], backend: str | None) -> dict[str, Any] | None:
    """``options`` on CPU if this jaxlib accepts them, else None (XLA's defaults)."""
    if (backend or jax.default_backend()) != "cpu":
        return None
    try:
        jax.jit(lambda x: x + 1, compiler_options=options).lower(jnp.zeros(())).compile()
    except Exception:  # a jaxlib without an option: XLA's defaults still work, only slower
        return None
    return options
