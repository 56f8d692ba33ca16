"""Jit-compiled train, eval and predict steps over on-device data.

The training arrays are put on the device once. Each epoch draws its shuffled batch order on the
device; every step is one compiled call that gathers its batch on the device by index, so the
host only dispatches (no per-step NumPy work, no host-to-device copies of images). Steps compile
with :func:`compiled` (on CPU: XLA options of ``jaxcolor.cpu.compiler``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding

from jaxcolor.cpu import compiler
from jaxcolor.objectives import Objective
from jaxcolor.training import parallel
from jaxcolor.training.state import TrainState

# How fit runs an epoch: one compiled call per batch, or the whole epoch as one lax.scan.
EPOCH_LOOPS = ("steps", "scan")


def compiled(fn: Callable[..., Any], **jit_kwargs: Any) -> Callable[..., Any]:
    """``jax.jit(fn)`` with the compiler options of steps on this backend (on CPU: no YNNPACK
    convolutions); for every jitted computation that runs the models."""
    return jax.jit(fn, compiler_options=compiler.step_options(), **jit_kwargs)


def compiled_once(fn: Callable[..., Any], **jit_kwargs: Any) -> Callable[..., Any]:
    """``jax.jit(fn)`` for a one-off measurement outside training, whose compile time is its
    cost: on CPU without XLA's backend optimisation passes (same values within float rounding,
    not always to the bit)."""
    return jax.jit(fn, compiler_options=compiler.one_shot_options(), **jit_kwargs)


def mirror_where(flip: jax.Array, images: jax.Array) -> jax.Array:
    """``images`` (N, H, W, …) with the rows where ``flip`` (N,) is true mirrored left–right."""
    return jnp.where(flip.reshape(-1, *[1] * (images.ndim - 1)), images[:, :, ::-1], images)


def _train_step(model: nn.Module, tx: optax.GradientTransformation, objective: Objective,
                mesh: Mesh, hflip: bool = False) -> Callable[..., tuple[TrainState, jax.Array]]:
    """The (not yet jitted) step of :func:`make_train_step`."""
    batch_rows = parallel.sharded(mesh)

    def train_step(state: TrainState, inputs: jax.Array, targets: jax.Array, order: jax.Array,
                   batch_index: jax.Array):
        indices = jax.lax.dynamic_index_in_dim(order, batch_index, axis=1, keepdims=False)
        gather = jax.vmap(lambda rows, row_indices: rows[row_indices])
        batch_inputs, batch_targets = (
            jax.lax.with_sharding_constraint(gather(a, indices).reshape(-1, *a.shape[2:]),
                                             batch_rows) for a in (inputs, targets))
        if hflip:  # each image and its targets mirrored with probability ½, drawn per step
            flip = jax.random.bernoulli(jax.random.fold_in(state.rng, state.step),
                                        shape=batch_inputs.shape[:1])
            batch_inputs, batch_targets = (mirror_where(flip, a)
                                           for a in (batch_inputs, batch_targets))

        def loss_of(params):
            outputs, updates = model.apply({"params": params, "batch_stats": state.batch_stats},
                                           batch_inputs, train=True, mutable=["batch_stats"])
            loss = objective.loss(outputs.astype(jnp.float32), batch_targets)  # whatever the
            return jnp.mean(loss), updates["batch_stats"]  # model computes in (mixed precision)

        (loss, batch_stats), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                             opt_state=opt_state), loss

    return train_step


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, objective: Objective,
                    mesh: Mesh, hflip: bool = False) -> Callable[..., tuple[TrainState, jax.Array]]:
    """A jitted ``(state, inputs, targets, order, i) → (state, loss)`` on batch ``order[:, i]``.

    ``inputs``/``targets`` are (hosts, rows_per_host, …) and ``order`` (hosts, num_batches,
    batch_per_host), split over hosts; each host gathers its part of the global batch from its
    own rows, and the batch is split over all devices. The state is replicated and donated.
    ``hflip``: mirror each training image (and its per-pixel targets) left–right with
    probability ½, a fresh draw per step from the state's PRNG key and step count.
    """
    host_rows, everywhere = parallel.per_host(mesh), parallel.replicated(mesh)
    return compiled(_train_step(model, tx, objective, mesh, hflip), donate_argnums=0,
                    in_shardings=(everywhere, host_rows, host_rows, host_rows, everywhere),
                    out_shardings=(everywhere, everywhere))


def make_train_epoch(model: nn.Module, tx: optax.GradientTransformation, objective: Objective,
                     mesh: Mesh, hflip: bool = False
                     ) -> Callable[..., tuple[TrainState, jax.Array]]:
    """A jitted ``(state, inputs, targets, order) → (state, losses)``: every batch of ``order``
    (as in :func:`make_train_step`) in one ``lax.scan``, so one call trains a whole epoch.
    The same computation as the step-by-step loop (tested); on XLA:CPU it runs slower
    (``benchmarks/scan_vs_steps.py``), so ``fit`` uses it only when asked to."""
    step = _train_step(model, tx, objective, mesh, hflip)
    host_rows, everywhere = parallel.per_host(mesh), parallel.replicated(mesh)

    def train_epoch(state: TrainState, inputs: jax.Array, targets: jax.Array, order: jax.Array):
        return jax.lax.scan(lambda carry, i: step(carry, inputs, targets, order, i), state,
                            jnp.arange(order.shape[1]))

    return compiled(train_epoch, donate_argnums=0,
                    in_shardings=(everywhere, host_rows, host_rows, host_rows),
                    out_shardings=(everywhere, everywhere))


def shuffle_batches(state: TrainState, rows_per_host: int, batch_per_host: int,
                    sharding: NamedSharding) -> tuple[TrainState, jax.Array]:
    """Advance the state's PRNG and draw this epoch's example order: (hosts, num_batches,
    batch_per_host) indices into each host's own rows. On one host this is one permutation of
    the data, whatever the number of devices."""
    return _shuffle_program()(state, rows_per_host, batch_per_host, sharding)


@functools.cache
def _shuffle_program() -> Callable[..., tuple[TrainState, jax.Array]]:
    """:func:`shuffle_batches` compiled as one-off programs are: integer arithmetic, so the
    same order to the bit, and its compile time outweighs the fraction of a millisecond each run
    loses (BENCHMARKS.md, "XLA:CPU's compile options: initial states, the epoch order, train
    steps")."""
    return compiled_once(_draw_order, static_argnames=("rows_per_host", "batch_per_host",
                                                       "sharding"))


def _draw_order(state: TrainState, rows_per_host: int, batch_per_host: int,
                sharding: NamedSharding) -> tuple[TrainState, jax.Array]:
    rng, shuffle_key = jax.random.split(state.rng)
    hosts = sharding.mesh.shape[parallel.HOSTS]
    keys = shuffle_key[None] if hosts == 1 else jax.random.split(shuffle_key, hosts)
    num_batches = rows_per_host // batch_per_host

    def host_order(key: jax.Array) -> jax.Array:
        order = jax.random.permutation(key, rows_per_host)[: num_batches * batch_per_host]
        return order.reshape(num_batches, batch_per_host)

    order = jax.lax.with_sharding_constraint(jax.vmap(host_order)(keys), sharding)
    return state.replace(rng=rng), order


def make_eval_step(model: nn.Module, objective: Objective, mesh: Mesh
                   ) -> Callable[..., dict[str, jax.Array]]:
    """A jitted ``(state, inputs, targets, weights) → {loss, metrics…, count}`` summed over the
    images of a global batch sharded over devices.

    Per-image means are weighted (padding rows carry weight 0) and summed, so batches add up.
    """

    def eval_step(state: TrainState, inputs: jax.Array, targets: jax.Array, weights: jax.Array):
        outputs = model.apply({"params": state.params, "batch_stats": state.batch_stats}, inputs,
                              train=False).astype(jnp.float32)
        per_pixel = {"loss": objective.loss(outputs, targets),
                     **objective.metrics(outputs, targets)}
        sums = {name: jnp.sum(jnp.mean(v, axis=(1, 2)) * weights)
                for name, v in per_pixel.items()}
        return {**sums, "count": jnp.sum(weights)}

    rows, everywhere = parallel.sharded(mesh), parallel.replicated(mesh)
    return compiled(eval_step, in_shardings=(everywhere, rows, rows, rows),
                    out_shardings=everywhere)


def evaluate(eval_step: Callable[..., dict[str, jax.Array]], state: TrainState,
             batches: list[tuple[jax.Array, ...]]) -> dict[str, float]:
    """Mean loss and metrics over the real (weight-1) images of padded on-device batches."""
    totals = jax.device_get([eval_step(state, *batch) for batch in batches])  # one host sync
    summed = jax.tree.map(lambda *values: float(sum(values)), *totals)  # float32 adds, as XLA's
    count = summed.pop("count")
    return {name: value / count for name, value in summed.items()}


@functools.cache  # equal models share one jitted function, so its compilations are reused
def make_predict(model: nn.Module) -> Callable[[TrainState, jax.Array], jax.Array]:
    """A jitted inference function (running BatchNorm statistics)."""
    return compiled(lambda state, x: model.apply(
        {"params": state.params, "batch_stats": state.batch_stats}, x, train=False))


def device_batches(arrays: list[np.ndarray], batch_size: int, mesh: Mesh
                   ) -> list[tuple[jax.Array, ...]]:
    """This process's rows of ``arrays`` as global batches of exactly ``batch_size`` sharded
    over the devices (zero-padded at the end), each followed by its per-row weights (1 for real
    rows, 0 for padding). Every process must pass the same number of rows."""
    local_batch = batch_size // jax.process_count()
    count = len(arrays[0])
    padded_count = max(-(-count // local_batch), 1) * local_batch
    weights = np.zeros(padded_count, np.float32)
    weights[:count] = 1.0
    padded = [np.concatenate([a, np.zeros((padded_count - count, *a.shape[1:]), a.dtype)])
              for a in arrays]
    rows = parallel.sharded(mesh)
    return [tuple(parallel.global_array(a[i:i + local_batch], rows, batch_size)
                  for a in [*padded, weights])
            for i in range(0, padded_count, local_batch)]


def shard_rows(array: np.ndarray, mesh: Mesh) -> jax.Array:
    """This process's rows → a global (hosts, rows_per_host, …) array, one block per host
    (every process must pass the same number of rows)."""
    return parallel.global_array(array[None], parallel.per_host(mesh), jax.process_count())
