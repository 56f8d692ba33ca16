"""2×2 max-pool backward: jaxcolor's one-hot-argmax VJP vs XLA's select-and-scatter.

Times, after compilation, the pool's forward+backward on a block-1-sized map and the CNN and
UNet train steps (batch 100, NF 32) with each pool, in one run: XLA's select-and-scatter,
jaxcolor's VJP with the earlier two-pass forward (``max`` and ``argmax`` separately), and
jaxcolor's (one variadic reduce for both). Prints medians.

    python benchmarks/maxpool_grad.py [--repeats=5]
"""

import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcolor.models import ModelSpec, build_model, layers
from jaxcolor.models import networks as models
from jaxcolor.objectives import CLASSIFICATION
from jaxcolor.training import parallel
from jaxcolor.training import state as train_state
from jaxcolor.training import steps as train


def median_seconds(fn, repeats: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@jax.custom_vjp
def two_pass_pool(x: jax.Array) -> jax.Array:
    """jaxcolor's pool as it was: the same backward, max and argmax read in two passes."""
    return layers._pool_windows(x).max(axis=-1)


def _two_pass_forward(x):
    windows = layers._pool_windows(x)
    return windows.max(axis=-1), (jnp.argmax(windows, axis=-1), x.shape)


two_pass_pool.defvjp(_two_pass_forward, layers._maxpool_backward)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    pools = {"xla select-and-scatter": lambda v: nn.max_pool(v, (2, 2), strides=(2, 2)),
             "one-hot argmax, two-pass": two_pass_pool,
             "one-hot argmax (jaxcolor)": models.maxpool2x}
    x = jax.random.normal(jax.random.key(0), (100, 32, 32, 32))
    print(f"pool fwd+bwd on {x.shape}:")
    for name, pool in pools.items():
        grad = jax.jit(jax.grad(lambda v, pool=pool: jnp.sum(pool(v) ** 2)))
        print(f"  {name:26s} {1e3 * median_seconds(lambda g=grad: g(x), args.repeats):7.1f} ms")
    rng = np.random.default_rng(0)
    inputs = jnp.asarray(rng.random((500, 32, 32, 1), np.float32))[None]
    targets = jnp.asarray(rng.integers(0, 24, (500, 32, 32)).astype(np.int32))[None]
    order = jnp.arange(500).reshape(1, 5, 100)  # one device
    print("train step, batch 100 (images/s):")
    original = models.maxpool2x
    for name, pool in pools.items():
        models.maxpool2x = pool  # the blocks look the pool up at trace time
        for model_name in ("cnn", "unet"):
            model = build_model(ModelSpec(model_name, num_filters=32, kernel=3, num_outputs=24))
            tx = optax.adam(1e-3)
            step = train.make_train_step(model, tx, CLASSIFICATION, parallel.data_mesh())
            state = train_state.create_train_state(model, tx, inputs[0, :1], jax.random.key(0))

            def five_steps(step=step, state=state):
                for i in range(5):
                    _, loss = step(jax.tree.map(jnp.copy, state), inputs, targets, order, i)
                return loss

            rate = 500 / median_seconds(five_steps, args.repeats)
            print(f"  {name:26s} {model_name:5s} {rate:7.1f}", flush=True)
    models.maxpool2x = original
    print(f"[jax {jax.__version__}, {jax.devices()[0].platform}]")


if __name__ == "__main__":
    main()
