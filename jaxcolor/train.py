"""Explicit train state, jit-compiled train/eval steps over on-device data, and the epoch loop.

The training arrays are put on the device once. Each epoch draws its shuffled batch order on the
device; every step is one compiled call that gathers its batch on the device by index, so the
host only dispatches (no per-step NumPy work, no host-to-device copies of images). By default
the steps are not wrapped in ``lax.scan``: XLA:CPU runs convolutions inside loop bodies slower
(jax-ml/jax#12868; ``benchmarks/scan_vs_steps.py``); ``epoch_loop="scan"`` compiles each epoch
as one scan instead (same computation, tested). Shapes are fixed (the last partial batch is
dropped; a fresh shuffle each epoch covers it later), so each function compiles once. Steps
compile with :func:`jaxcolor.compiler.step_options` (on CPU: no YNNPACK convolutions).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding

from jaxcolor import compiler, host_memory, parallel
from jaxcolor.errors import UserError
from jaxcolor.objectives import Objective
from jaxcolor.tasks import TaskData

if TYPE_CHECKING:
    from jaxcolor.checkpoint import Checkpoints


# How fit runs an epoch: one compiled call per batch, or the whole epoch as one lax.scan.
EPOCH_LOOPS = ("steps", "scan")


class TrainState(struct.PyTreeNode):
    """Everything that changes during training, as one pytree."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array


def create_train_state(model: nn.Module, tx: optax.GradientTransformation,
                       sample_input: jax.Array, key: jax.Array) -> TrainState:
    init_key, rng = jax.random.split(key)
    variables = jax.jit(partial(model.init, train=False))(init_key, sample_input)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                      rng=rng)


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
            return jnp.mean(objective.loss(outputs, batch_targets)), updates["batch_stats"]

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
    return jax.jit(_train_step(model, tx, objective, mesh, hflip), donate_argnums=0,
                   in_shardings=(everywhere, host_rows, host_rows, host_rows, everywhere),
                   out_shardings=(everywhere, everywhere),
                   compiler_options=compiler.step_options())


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

    return jax.jit(train_epoch, donate_argnums=0,
                   in_shardings=(everywhere, host_rows, host_rows, host_rows),
                   out_shardings=(everywhere, everywhere),
                   compiler_options=compiler.step_options())


@partial(jax.jit, static_argnames=("rows_per_host", "batch_per_host", "sharding"))
def shuffle_batches(state: TrainState, rows_per_host: int, batch_per_host: int,
                    sharding: NamedSharding) -> tuple[TrainState, jax.Array]:
    """Advance the state's PRNG and draw this epoch's example order: (hosts, num_batches,
    batch_per_host) indices into each host's own rows. On one host this is one permutation of
    the data, whatever the number of devices."""
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
                              train=False)
        per_pixel = {"loss": objective.loss(outputs, targets),
                     **objective.metrics(outputs, targets)}
        sums = {name: jnp.sum(jnp.mean(v, axis=(1, 2)) * weights)
                for name, v in per_pixel.items()}
        return {**sums, "count": jnp.sum(weights)}

    rows, everywhere = parallel.sharded(mesh), parallel.replicated(mesh)
    return jax.jit(eval_step, in_shardings=(everywhere, rows, rows, rows),
                   out_shardings=everywhere, compiler_options=compiler.step_options())


def evaluate(eval_step: Callable[..., dict[str, jax.Array]], state: TrainState,
             batches: list[tuple[jax.Array, ...]]) -> dict[str, float]:
    """Mean loss and metrics over the real (weight-1) images of padded on-device batches."""
    totals = [eval_step(state, *batch) for batch in batches]
    summed = jax.tree.map(lambda *values: float(sum(values)), *totals)
    count = summed.pop("count")
    return {name: value / count for name, value in summed.items()}


@functools.cache  # equal models share one jitted function, so its compilations are reused
def make_predict(model: nn.Module) -> Callable[[TrainState, jax.Array], jax.Array]:
    """A jitted inference function (running BatchNorm statistics)."""
    return jax.jit(lambda state, x: model.apply(
        {"params": state.params, "batch_stats": state.batch_stats}, x, train=False),
        compiler_options=compiler.step_options())


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


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float | None  # percent, for classification
    seconds: float  # train + validation wall time
    train_images_per_sec: float
    elapsed: float  # seconds since fit() started, data transfer and compilation included


@dataclasses.dataclass(frozen=True)
class FitResult:
    state: TrainState
    history: list[EpochRecord]
    compile_seconds: float
    wall_seconds: float

    @property
    def final(self) -> EpochRecord:
        return self.history[-1]


def fit(model: nn.Module, data: TaskData, *, epochs: int, batch_size: int, learning_rate: float,
        seed: int, log: Callable[[str], None] = print,
        on_epoch: Callable[[int, TrainState], None] | None = None,
        checkpoints: Checkpoints | None = None, epoch_loop: str = "steps",
        hflip: bool = False) -> FitResult:
    """Train with Adam for ``epochs``, validating on the test split after every epoch.

    ``on_epoch(epoch, state)`` sees the state after each epoch trained here; its buffers are
    donated to the next step, so copy what you keep. With a constant learning rate the first E
    epochs of a longer run equal an E-epoch run exactly. With ``checkpoints``, training resumes
    after the newest checkpoint within ``epochs`` (the state carries the data-order PRNG key, so
    the continuation is identical to an uninterrupted run) and saves as its policy says.
    ``epoch_loop``: ``"steps"`` dispatches one compiled step per batch, ``"scan"`` compiles the
    whole epoch as one ``lax.scan`` (:data:`EPOCH_LOOPS`). ``hflip``: random left–right
    mirroring of the training batches (:func:`make_train_step`). On CPU the process keeps freed
    host memory for reuse (:func:`jaxcolor.host_memory.retain_freed_memory`).
    """
    start = time.perf_counter()
    host_memory.retain_freed_memory()
    mesh = parallel.data_mesh()
    parallel.check_batch_size(batch_size, mesh)
    tx = optax.adam(learning_rate)
    train_inputs = shard_rows(data.train_inputs, mesh)
    train_targets = shard_rows(data.train_targets, mesh)
    eval_batches = device_batches([data.test_inputs, data.test_targets], batch_size, mesh)
    hosts = jax.process_count()
    rows_per_host, batch_per_host = train_inputs.shape[1], batch_size // hosts
    order_sharding = parallel.per_host(mesh)
    num_batches = rows_per_host // batch_per_host
    if num_batches == 0:
        raise UserError(f"--batch_size={batch_size} is larger than the "
                        f"{hosts * rows_per_host} training images; use a smaller one.")
    batch_indices = [jnp.asarray(i, jnp.int32) for i in range(num_batches)]

    sample_shape = (1, *data.train_inputs.shape[1:])
    state = jax.jit(lambda key: create_train_state(model, tx, jnp.zeros(sample_shape), key),
                    out_shardings=parallel.replicated(mesh))(jax.random.key(seed))
    history: list[EpochRecord] = []
    if checkpoints is not None:
        state, history = resume(checkpoints, state, epochs, log)
    earlier_elapsed = history[-1].elapsed if history else 0.0
    compile_start = time.perf_counter()
    _, order = shuffle_batches(state, rows_per_host, batch_per_host, order_sharding)
    if epoch_loop == "scan":
        train_epoch = make_train_epoch(model, tx, data.objective, mesh, hflip).lower(
            state, train_inputs, train_targets, order).compile()
    else:
        train_step = make_train_step(model, tx, data.objective, mesh, hflip).lower(
            state, train_inputs, train_targets, order, batch_indices[0]).compile()

        def train_epoch(state, inputs, targets, order):
            losses = [None] * num_batches
            for i, batch_index in enumerate(batch_indices):
                state, losses[i] = train_step(state, inputs, targets, order, batch_index)
            return state, jnp.stack(losses)
    eval_step = make_eval_step(model, data.objective, mesh).lower(
        state, *eval_batches[0]).compile()
    compile_seconds = time.perf_counter() - compile_start
    log(f"compiled train and eval steps in {compile_seconds:.1f}s")

    for epoch in range(len(history) + 1, epochs + 1):
        epoch_start = time.perf_counter()
        state, order = shuffle_batches(state, rows_per_host, batch_per_host, order_sharding)
        state, losses = train_epoch(state, train_inputs, train_targets, order)
        train_loss = float(jnp.mean(losses))  # the one host sync of the epoch
        train_seconds = time.perf_counter() - epoch_start
        images_per_sec = num_batches * batch_size / train_seconds
        if not math.isfinite(train_loss):
            raise divergence_error(losses, epoch, learning_rate, checkpoints)
        metrics = evaluate(eval_step, state, eval_batches)
        accuracy = 100.0 * metrics["accuracy"] if "accuracy" in metrics else None
        record = EpochRecord(epoch, train_loss, metrics["loss"], accuracy,
                             time.perf_counter() - epoch_start,
                             images_per_sec,
                             earlier_elapsed + time.perf_counter() - start)
        history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, state)
        saved = checkpoints is not None and checkpoints.save(epoch, state, history)
        accuracy_text = f"  val_acc {accuracy:5.2f}%" if accuracy is not None else ""
        log(f"epoch {epoch:3d}/{epochs}  train_loss {train_loss:.4f}  val_loss "
            f"{record.val_loss:.4f}{accuracy_text}  {record.seconds:5.1f}s  "
            f"{record.train_images_per_sec:6.0f} img/s{'  [checkpoint]' if saved else ''}")
    return FitResult(state, history, compile_seconds,
                     earlier_elapsed + time.perf_counter() - start)


def resume(checkpoints: Checkpoints, fresh: TrainState, epochs: int,
           log: Callable[[str], None]) -> tuple[TrainState, list[EpochRecord]]:
    """The newest checkpointed state at or before ``epochs`` and its history, or ``fresh``."""
    saved = [epoch for epoch in checkpoints.epochs() if epoch <= epochs]
    if not saved:
        if checkpoints.epochs():
            raise UserError(f"the checkpoints in {checkpoints.directory} start after epoch "
                            f"{checkpoints.epochs()[0]}, beyond --epochs={epochs}; raise "
                            f"--epochs or use --noresume to start afresh.")
        return fresh, []
    state, history = checkpoints.restore(saved[-1], like=fresh)
    log(f"resuming after epoch {saved[-1]} from {checkpoints.directory}")
    return state, history


def divergence_error(losses: jax.Array, epoch: int, learning_rate: float,
                     checkpoints: Checkpoints | None) -> UserError:
    """The UserError for a non-finite loss (``losses``: the epoch's per-step losses): where it
    first appeared and what is kept."""
    values = np.asarray(losses)
    first = int(np.argmin(np.isfinite(values)))
    kept = checkpoints.latest_epoch() if checkpoints is not None else None
    where = (f"The last good checkpoint (epoch {kept}) is kept in {checkpoints.directory}"
             if kept is not None else "No checkpoint was written")
    return UserError(f"training diverged in epoch {epoch}, step {first + 1} of {len(values)}: "
                     f"the loss is {values[first]}. The learning rate is the likely cause; "
                     f"lower --learning_rate (now {learning_rate:g}). {where}.")
