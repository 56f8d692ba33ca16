"""jaxcolor's two epoch loops: a jitted step per batch (default) vs one lax.scan per epoch.

Times the same CNN train step (batch 100, 32×32 grey → 24 classes, Adam) two ways, after
compilation: (a) a Python loop over ``train.make_train_step``, which gathers its batch on
device (``--epoch_loop=steps``); (b) ``train.make_train_epoch``, one compiled lax.scan over the
same steps (``--epoch_loop=scan``). Both compile with jaxcolor's step options. Prints images/s
of each and the ratio. XLA:CPU runs convolutions inside loop bodies slower (jax-ml/jax#12868).

    python benchmarks/scan_vs_steps.py [--batches=5] [--repeats=3]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcolor.cpu import host_memory
from jaxcolor.models import ModelSpec, build_model
from jaxcolor.objectives import CLASSIFICATION
from jaxcolor.training import parallel
from jaxcolor.training import state as train_state
from jaxcolor.training import steps as train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    host_memory.retain_freed_memory()  # as jaxcolor's fit does
    n = args.batches * args.batch_size
    rng = np.random.default_rng(0)
    inputs = jnp.asarray(rng.random((n, 32, 32, 1), np.float32))[None]
    targets = jnp.asarray(rng.integers(0, 24, (n, 32, 32), np.int32))[None]
    order = jnp.arange(n).reshape(1, args.batches, args.batch_size)  # one device
    model = build_model(ModelSpec("cnn", num_filters=32, kernel=3, num_outputs=24))
    tx = optax.adam(1e-3)
    step = train.make_train_step(model, tx, CLASSIFICATION, parallel.data_mesh())
    epoch = train.make_train_epoch(model, tx, CLASSIFICATION, parallel.data_mesh())

    def fresh_state():
        return train_state.create_train_state(model, tx, inputs[0, :1], jax.random.key(0))

    def python_loop(state):
        for i in range(args.batches):
            state, loss = step(state, inputs, targets, order, i)
        return loss

    def scanned(state):
        return epoch(state, inputs, targets, order)[1][-1]

    results = {}
    for name, run in (("jitted step per batch (jaxcolor)", python_loop),
                      ("lax.scan over the steps", scanned)):
        jax.block_until_ready(run(fresh_state()))  # compile and warm up
        times = []
        for _ in range(args.repeats):
            state = fresh_state()
            start = time.perf_counter()
            jax.block_until_ready(run(state))
            times.append(time.perf_counter() - start)
        results[name] = n / statistics.median(times)
        print(f"{name:34s} {results[name]:8.1f} images/s (median of {args.repeats})",
              flush=True)
    values = list(results.values())
    print(f"ratio step-per-batch / scan: {values[0] / values[1]:.1f}x  "
          f"[jax {jax.__version__}, {jax.devices()[0].platform}]")


if __name__ == "__main__":
    main()
