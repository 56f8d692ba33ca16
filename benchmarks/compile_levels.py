"""What XLA:CPU's backend optimisation level costs and changes: a model's initial state (what
``fit`` builds before training) and its train step (batch 100), each compiled at XLA's default
level (3) and at level 2 (``jaxcolor.cpu.compiler``), in fresh programs: compile seconds, step
time, and whether the two compute the same bits (initial states; train states after 5 steps).

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

LEVELS = {"default (3)": compiler.CPU_OPTIONS, "2": compiler.INIT_CPU_OPTIONS}


def leaves(tree) -> list[np.ndarray]:
    """Every leaf as a NumPy array (PRNG keys as their data)."""
    return [np.asarray(jax.random.key_data(leaf) if jax.dtypes.issubdtype(
        leaf.dtype, jax.dtypes.prng_key) else leaf) for leaf in jax.tree.leaves(tree)]


def same_bits(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b), strict=True))


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
            states, seconds = {}, {}
            for level, options in LEVELS.items():
                start = time.perf_counter()
                states[level] = jax.block_until_ready(jax.jit(
                    lambda key, model=model: create_train_state(
                        model, tx, jnp.zeros((1, 32, 32, 1)), key),
                    compiler_options=options)(jax.random.key(0)))
                seconds[level] = time.perf_counter() - start
            print(f"initial state, {name}, {conv_init}: " + ", ".join(
                f"level {level} {value:.2f} s" for level, value in seconds.items())
                + f"; same bits: {same_bits(*states.values())}", flush=True)
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
        for level, options in LEVELS.items():
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
            results[level] = (compile_seconds, float(np.median(times)), state)
        print(f"train step, {name}: " + ", ".join(
            f"level {level} compile {c:.2f} s, step {1e3 * t:.1f} ms"
            for level, (c, t, _) in results.items())
            + f"; same bits after 55 steps: {same_bits(*(r[2] for r in results.values()))}",
            flush=True)


if __name__ == "__main__":
    main()
