"""What XLA:CPU's compile options cost and change: a model's initial state (what ``fit`` builds
before training), an epoch's example order (5,000 images, batch 50) and a train step (batch
100), each compiled in fresh programs with XLA's defaults (backend optimisation level 3, MLIR
fusion emitters), at level 2, and with the LLVM fusion emitters (``jaxcolor.cpu.compiler``):
compile seconds, step time, and whether each computes the same bits as the defaults (initial
states; orders; train states after 55 steps).

    python benchmarks/compile_levels.py [--models=unet,cnn,unet_transpose]
        [--conv_inits=pytorch,lecun] [--train_steps]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.cpu import compiler
from jaxcolor.models import ModelSpec, build_model
from jaxcolor.objectives import CLASSIFICATION
from jaxcolor.training import optimizer, parallel, steps
from jaxcolor.training.state import create_train_state

# The first variant of each is the reference the others' bits are compared with.
INIT_VARIANTS = {"defaults": compiler.CPU_OPTIONS, "level 2": compiler.INIT_CPU_OPTIONS,
                 "level 2 + LLVM emitters": {**compiler.INIT_CPU_OPTIONS,
                                             **compiler.LLVM_EMITTERS}}
ORDER_VARIANTS = {"defaults": compiler.CPU_OPTIONS,
                  "level 0 + LLVM emitters": {**compiler.ONE_SHOT_CPU_OPTIONS,
                                              **compiler.LLVM_EMITTERS}}
STEP_VARIANTS = {"defaults": compiler.CPU_OPTIONS, "level 2": compiler.INIT_CPU_OPTIONS,
                 "LLVM emitters": {**compiler.CPU_OPTIONS, **compiler.LLVM_EMITTERS}}


def leaves(tree) -> list[np.ndarray]:
    """Every leaf as a NumPy array (PRNG keys as their data)."""
    return [np.asarray(jax.random.key_data(leaf) if jax.dtypes.issubdtype(
        leaf.dtype, jax.dtypes.prng_key) else leaf) for leaf in jax.tree.leaves(tree)]


def same_bits(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b), strict=True))


def compared(results: dict[str, tuple[str, object]]) -> str:
    """``label: figures`` per variant, each after the first with whether its bits match it."""
    (_, (_, reference)), *_ = results.items()
    return "; ".join(f"{label}: {text}" + ("" if value is reference else
                                           f", same bits: {same_bits(reference, value)}")
                     for label, (text, value) in results.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="unet,cnn,unet_transpose")
    parser.add_argument("--conv_inits", default="pytorch,lecun")
    parser.add_argument("--train_steps", action="store_true",
                        help="also the train step of each model (pytorch init), batch 100")
    args = parser.parse_args()
    tx, mesh = optimizer.adam(1e-3), parallel.data_mesh()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}", flush=True)
    for conv_init in args.conv_inits.split(","):
        for name in args.models.split(","):
            model = build_model(ModelSpec(name, num_filters=32, kernel=3, num_outputs=24,
                                          conv_init=conv_init))
            results = {}
            for label, options in INIT_VARIANTS.items():
                start = time.perf_counter()
                state = jax.block_until_ready(jax.jit(
                    lambda key, model=model: create_train_state(
                        model, tx, jnp.zeros((1, 32, 32, 1)), key),
                    compiler_options=options)(jax.random.key(0)))
                results[label] = (f"{time.perf_counter() - start:.2f} s", state)
            print(f"initial state, {name}, {conv_init}: {compared(results)}", flush=True)
    results = {}
    for label, options in ORDER_VARIANTS.items():
        start = time.perf_counter()
        draw = jax.jit(steps._draw_order, static_argnums=(1, 2, 3), compiler_options=options
                       ).lower(state, 5000, 50, parallel.per_host(mesh)).compile()
        compile_seconds = time.perf_counter() - start
        times = []
        for _ in range(5):
            start = time.perf_counter()
            order = jax.block_until_ready(draw(state)[1])
            times.append(time.perf_counter() - start)
        results[label] = (f"compile {compile_seconds:.2f} s, run "
                          f"{1e3 * float(np.median(times)):.1f} ms", order)
    print(f"epoch order: {compared(results)}", flush=True)
    if not args.train_steps:
        return
    rng = np.random.default_rng(0)
    inputs = jnp.asarray(rng.random((1, 1000, 32, 32, 1), np.float32))
    targets = jnp.asarray(rng.integers(0, 24, (1, 1000, 32, 32), np.int32))
    order = jnp.arange(1000, dtype=jnp.int32).reshape(1, 10, 100)
    for name in args.models.split(","):
        model = build_model(ModelSpec(name, num_filters=32, kernel=3, num_outputs=24))
        fresh = jax.jit(lambda key, model=model: create_train_state(
            model, tx, jnp.zeros((1, 32, 32, 1)), key))(jax.random.key(0))
        results = {}
        for label, options in STEP_VARIANTS.items():
            start = time.perf_counter()
            step = jax.jit(steps._train_step(model, tx, CLASSIFICATION, mesh),
                           compiler_options=options).lower(
                fresh, inputs, targets, order, jnp.int32(0)).compile()
            compile_seconds = time.perf_counter() - start
            state = fresh
            for i in range(5):
                state, _ = step(state, inputs, targets, order, jnp.int32(i))
            times = []
            for _ in range(5):
                start = time.perf_counter()
                for i in range(10):
                    state, _ = step(state, inputs, targets, order, jnp.int32(i))
                jax.block_until_ready(state)
                times.append((time.perf_counter() - start) / 10)
            results[label] = (f"compile {compile_seconds:.2f} s, step "
                              f"{1e3 * float(np.median(times)):.1f} ms", state)
        print(f"train step, {name} (bits after 55 steps): {compared(results)}", flush=True)


if __name__ == "__main__":
    main()
