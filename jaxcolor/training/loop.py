"""The epoch loop: train with Adam, validate after every epoch, checkpoint, resume.

By default the steps are not wrapped in ``lax.scan``: XLA:CPU runs XLA's convolutions inside
loop bodies slower (jax-ml/jax#12868; ``benchmarks/scan_vs_steps.py``); ``epoch_loop="scan"``
compiles each epoch as one scan instead (same computation, tested). Shapes are fixed (the last
partial batch is dropped; a fresh shuffle each epoch covers it later), so each function
compiles once.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from jaxcolor.config import ExperimentConfig
from jaxcolor.cpu import compiler, host_memory
from jaxcolor.errors import RunInterruptedError, UserError
from jaxcolor.objectives import Objective
from jaxcolor.timing import timed
from jaxcolor.training import memory, optimizer, parallel
from jaxcolor.training.checkpoint import Checkpoints, DamagedCheckpointError
from jaxcolor.training.state import EpochRecord, TrainState, create_train_state
from jaxcolor.training.steps import (
    device_batches,
    evaluate,
    make_eval_step,
    make_train_epoch,
    make_train_step,
    shard_rows,
    shuffle_batches,
)


@dataclasses.dataclass(frozen=True)
class FitResult:
    state: TrainState
    history: list[EpochRecord]
    compile_seconds: float
    wall_seconds: float
    # Seconds of this process by phase: "compile" (data to the device, initial or restored
    # state, compiled steps), "train" (the epochs' steps), "eval", "checkpoint" (with what
    # on_epoch does: snapshots, TensorBoard logs).
    phases: dict[str, float]

    @property
    def final(self) -> EpochRecord:
        return self.history[-1]


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The settings :func:`fit` trains with, named as :class:`ExperimentConfig`'s
    (:meth:`of`)."""

    epochs: int
    batch_size: int
    learning_rate: float
    seed: int = 0
    epoch_loop: str = "steps"
    hflip: bool = False
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    precision: str = "float32"  # the dtype the model computes in (its inputs')

    @classmethod
    def of(cls, config: ExperimentConfig) -> TrainOptions:
        """The options of an experiment's config."""
        return cls(**{field.name: getattr(config, field.name)
                      for field in dataclasses.fields(cls)})


def fit(model: nn.Module, objective: Objective, train: tuple[np.ndarray, np.ndarray],
        test: tuple[np.ndarray, np.ndarray], options: TrainOptions, *,
        log: Callable[[str], None] = print,
        on_epoch: Callable[[EpochRecord, TrainState, np.ndarray], None] | None = None,
        checkpoints: Checkpoints | None = None, progress: bool = False) -> FitResult:
    """Train ``model`` on ``train`` (inputs, targets) with Adam as ``options`` say (their
    ``epochs``, ``batch_size``, …) to minimise ``objective``, validating on ``test`` after every
    epoch (both sets' targets first go
    through ``objective.prepare``, if it has one; its seconds are the phase ``"data"``).

    ``on_epoch(record, state, step_losses)`` sees each epoch trained here: its record, the
    state after it (its buffers are donated to the next step, so copy what you keep) and the
    loss of each of its steps. With a constant learning rate the first E epochs of a longer run
    equal an E-epoch run exactly; ``lr_schedule="cosine"`` decays it to 0 over the ``epochs``
    after ``warmup_epochs`` of linear warm-up (:mod:`.optimizer`). With ``checkpoints``, training
    resumes after the newest checkpoint within ``epochs`` (the state carries the data-order PRNG
    key, so the continuation is identical to an uninterrupted run) and saves as its policy says.
    ``epoch_loop``: ``"steps"`` dispatches one compiled step per batch, ``"scan"`` compiles the
    whole epoch as one ``lax.scan`` (:data:`.steps.EPOCH_LOOPS`). ``hflip``: random left–right
    mirroring of the training batches (:func:`make_train_step`). ``precision``: the inputs enter
    the model in it, and its layers compute in their inputs' dtype
    (:func:`jaxcolor.models.layers.compute_dtype`). ``progress``: a tqdm bar over
    each epoch's steps (each step then waits for the one before: for a terminal, not for logs).
    On CPU the process keeps freed host memory for reuse
    (:func:`jaxcolor.cpu.host_memory.retain_freed_memory`).
    """
    start = time.perf_counter()
    epochs, batch_size, learning_rate = options.epochs, options.batch_size, options.learning_rate
    host_memory.retain_freed_memory()
    prepare_seconds = 0.0
    train, test = ((inputs.astype(options.precision, copy=False), targets)
                   for inputs, targets in (train, test))
    if objective.prepare is not None:
        train, test = ((inputs, objective.prepare(targets)) for inputs, targets in (train, test))
        prepare_seconds = time.perf_counter() - start
        log(f"prepared the {objective.name} targets in {prepare_seconds:.1f}s")
    mesh = parallel.data_mesh()
    parallel.check_batch_size(batch_size, mesh)
    train_inputs, train_targets = (shard_rows(array, mesh) for array in train)
    eval_batches = device_batches(list(test), batch_size, mesh)
    hosts = jax.process_count()
    rows_per_host, batch_per_host = train_inputs.shape[1], batch_size // hosts
    order_sharding = parallel.per_host(mesh)
    num_batches = rows_per_host // batch_per_host
    if num_batches == 0:
        raise UserError(f"--batch_size={batch_size} is larger than the "
                        f"{hosts * rows_per_host} training images; use a smaller one.")
    batch_indices = [jnp.asarray(i, jnp.int32) for i in range(num_batches)]
    tx = optimizer.adam(learning_rate, options.lr_schedule, epochs * num_batches,
                        options.warmup_epochs * num_batches)

    sample_shape = (1, *train[0].shape[1:])
    state = jax.jit(lambda key: create_train_state(model, tx, jnp.zeros(sample_shape), key),
                    out_shardings=parallel.replicated(mesh),
                    compiler_options=compiler.init_options())(jax.random.key(options.seed))
    history: list[EpochRecord] = []
    if checkpoints is not None:
        state, history = resume(checkpoints, state, epochs, log)
    earlier_elapsed = history[-1].elapsed if history else 0.0
    compile_start = time.perf_counter()
    _, order = shuffle_batches(state, rows_per_host, batch_per_host, order_sharding)
    if options.epoch_loop == "scan":
        train_epoch = make_train_epoch(model, tx, objective, mesh, options.hflip).lower(
            state, train_inputs, train_targets, order).compile()
    else:
        train_step = make_train_step(model, tx, objective, mesh, options.hflip).lower(
            state, train_inputs, train_targets, order, batch_indices[0]).compile()

        def train_epoch(state, inputs, targets, order):
            losses = [None] * num_batches
            with tqdm.tqdm(total=num_batches, disable=not progress, leave=False, unit="step",
                           desc=f"epoch {epoch}/{epochs}") as bar:
                for i, batch_index in enumerate(batch_indices):
                    state, losses[i] = train_step(state, inputs, targets, order, batch_index)
                    if progress:
                        losses[i].block_until_ready()
                        bar.update()
            return state, jnp.stack(losses)
    eval_step = make_eval_step(model, objective, mesh).lower(
        state, *eval_batches[0]).compile()
    memory.check_steps_fit([train_epoch if options.epoch_loop == "scan" else train_step,
                            eval_step],
                           list(mesh.local_devices), f"--batch_size={batch_size}")
    compile_seconds = time.perf_counter() - compile_start
    log(f"compiled train and eval steps in {compile_seconds:.1f}s")
    phases = {"data": prepare_seconds, "compile": time.perf_counter() - start - prepare_seconds,
              "train": 0.0, "eval": 0.0, "checkpoint": 0.0}

    epoch = first_epoch = len(history) + 1
    try:
        for epoch in range(len(history) + 1, epochs + 1):
            epoch_start = time.perf_counter()
            with timed(phases, "train") as training:
                state, order = shuffle_batches(state, rows_per_host, batch_per_host,
                                               order_sharding)
                state, losses = train_epoch(state, train_inputs, train_targets, order)
                train_loss = float(jnp.mean(losses))  # the one host sync of the epoch
            images_per_sec = num_batches * batch_size / training.seconds
            if not math.isfinite(train_loss):
                raise divergence_error(losses, epoch, learning_rate, checkpoints)
            with timed(phases, "eval"):
                metrics = evaluate(eval_step, state, eval_batches)
            accuracy = 100.0 * metrics["accuracy"] if "accuracy" in metrics else None
            record = EpochRecord(epoch, train_loss, metrics["loss"], accuracy,
                                 time.perf_counter() - epoch_start,
                                 images_per_sec,
                                 earlier_elapsed + time.perf_counter() - start)
            history.append(record)
            with timed(phases, "checkpoint"):
                if on_epoch is not None:
                    on_epoch(record, state, np.asarray(losses))
                saved = checkpoints is not None and checkpoints.save(epoch, state, history)
            accuracy_text = f"  val_acc {accuracy:5.2f}%" if accuracy is not None else ""
            trained_here = history[-(epoch - first_epoch + 1):]
            left = (epochs - epoch) * sum(r.seconds for r in trained_here) / len(trained_here)
            log(f"epoch {epoch:3d}/{epochs}  train_loss {train_loss:.4f}  val_loss "
                f"{record.val_loss:.4f}{accuracy_text}  {record.seconds:5.1f}s  "
                f"{record.train_images_per_sec:6.0f} img/s{'  [checkpoint]' if saved else ''}"
                + (f"  ETA {_duration(left)}" if epoch < epochs else ""))
    except KeyboardInterrupt:
        raise interruption(epoch, checkpoints) from None
    if checkpoints is not None:  # every save on disk before fit returns
        with timed(phases, "checkpoint"):
            checkpoints.wait()
    return FitResult(state, history, compile_seconds,
                     earlier_elapsed + time.perf_counter() - start, phases)


def resume(checkpoints: Checkpoints, fresh: TrainState, epochs: int,
           log: Callable[[str], None]) -> tuple[TrainState, list[EpochRecord]]:
    """The newest readable checkpointed state at or before ``epochs`` and its history, or
    ``fresh``. Newer checkpoints that cannot be read are warned of and set aside; when none
    can be read, the newest one's :class:`DamagedCheckpointError` is raised."""
    saved = [epoch for epoch in checkpoints.epochs() if epoch <= epochs]
    if not saved:
        if checkpoints.epochs():
            raise UserError(f"the checkpoints in {checkpoints.directory} start after epoch "
                            f"{checkpoints.epochs()[0]}, beyond --epochs={epochs}; raise "
                            f"--epochs or use --noresume to start afresh.")
        return fresh, []
    damaged: list[DamagedCheckpointError] = []
    for epoch in reversed(saved):
        try:
            state, history = checkpoints.restore(epoch, like=fresh)
        except DamagedCheckpointError as err:
            damaged.append(err)
            continue
        for err in damaged:
            target = checkpoints.set_aside(err.epoch)
            log(f"warning: {err.problem}; moved to {target}")
        log(f"resuming after epoch {epoch} from {checkpoints.directory}")
        return state, history
    raise damaged[0]


def _duration(seconds: float) -> str:
    """``75`` → ``"1m15s"``."""
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def interruption(epoch: int, checkpoints: Checkpoints | None) -> RunInterruptedError:
    """The error for a stop in ``epoch``: what is kept, and how to go on."""
    if checkpoints is not None:
        checkpoints.wait()
    kept = checkpoints.latest_epoch() if checkpoints is not None else None
    if kept is None:
        return RunInterruptedError(f"interrupted in epoch {epoch}; no checkpoint was written "
                                   f"yet, so the same command starts this run again.")
    return RunInterruptedError(f"interrupted in epoch {epoch}; epoch {kept}'s checkpoint is "
                               f"kept in {checkpoints.directory}; run the same command to "
                               f"resume.")


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
