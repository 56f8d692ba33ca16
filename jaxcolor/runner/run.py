"""One configuration trained and evaluated: its results rows (the results.json contract), its
final state, and its predictions rendered to RGB."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from jaxcolor.colour import metrics
from jaxcolor.config import ExperimentConfig, settings_where
from jaxcolor.errors import UserError
from jaxcolor.models import ModelSpec, build_model, conv_implementation
from jaxcolor.results import row_label
from jaxcolor.runner import tensorboard
from jaxcolor.tasks import Task, TaskData
from jaxcolor.training import (
    CheckpointPolicy,
    Checkpoints,
    EpochRecord,
    TrainOptions,
    TrainState,
    compiled,
    fit,
    parallel,
    run_fingerprint,
    run_name,
)

Log = Callable[[str], None]


def log_line(text: str) -> None:
    """Print ``text`` on the first process only (every process of a multi-host run logs the
    same lines; errors still come from each)."""
    if parallel.is_main_process():
        print(text, flush=True)


def on_terminal() -> bool:
    """Whether this process's output goes to a terminal (progress bars), not to a log."""
    return sys.stdout.isatty() and parallel.is_main_process()


def model_spec(cfg: ExperimentConfig, task: Task) -> ModelSpec:
    """The model of ``cfg`` with the output width and head of ``task``."""
    return ModelSpec(cfg.model, num_filters=cfg.num_filters, kernel=cfg.kernel,
                     num_outputs=task.num_outputs, conv_init=cfg.conv_init,
                     conv_impl=cfg.conv_impl, **task.head(cfg.num_filters))


def precision_here(cfg: ExperimentConfig, log: Log) -> ExperimentConfig:
    """``cfg``, or on a CPU whose convolutions would run bfloat16 through XLA (no AVX512_BF16
    kernels: XLA:CPU's bfloat16 convolutions are slower than float32's, BENCHMARKS.md, "Mixed
    precision (bfloat16) train steps") the same run in float32, said in one line.
    ``--conv_impl=xla`` asks for XLA's bfloat16 and keeps it."""
    if (cfg.precision == "bfloat16" and cfg.conv_impl == "auto" and jax.default_backend() == "cpu"
            and conv_implementation("auto", "bfloat16") == "xla"):
        log("note: this CPU has no bfloat16 convolution kernels here (they need AVX512_BF16 and "
            "one CPU device); --precision=bfloat16 trains in float32, which is faster here.")
        return cfg.replace(precision="float32")
    return cfg


@dataclasses.dataclass(frozen=True)
class RunOutput:
    config: ExperimentConfig
    row: dict[str, Any]
    state: TrainState
    task_data: TaskData  # what it was trained and evaluated on (shared, not copied)

    @property
    def spec(self) -> ModelSpec:
        return model_spec(self.config, self.task_data.task)

    @property
    def label(self) -> str:
        return row_label(self.row)

    @property
    def slug(self) -> str:
        return f"{run_name(self.config)}_e{self.config.epochs}"


def train_and_evaluate(cfg: ExperimentConfig, data: TaskData, log: Log = log_line,
                       after_first_epoch: Callable[[], None] | None = None) -> list[RunOutput]:
    """Train one configuration; one results row per reported epoch (the last one at least). The
    last row also gets ``phases``: this process's seconds of compile, train, eval, checkpoint and
    reporting (test-set metrics) of the training. ``after_first_epoch()`` is called once, after
    the first epoch trained here (when the steps are compiled and running)."""
    if cfg.batch_size > len(data.train_inputs):
        raise UserError(f"--batch_size={cfg.batch_size} is larger than the "
                        f"{len(data.train_inputs)} training images; use a smaller one.")
    cfg = precision_here(cfg, log)
    objective = data.task.objective_for(cfg.loss, data.train_targets)
    model = build_model(model_spec(cfg, data.task))
    log(f"== {cfg.experiment}: {cfg.model}, {cfg.task}, {cfg.loss}, batch {cfg.batch_size}, lr "
        f"{cfg.learning_rate:g}, NF {cfg.num_filters}, kernel {cfg.kernel}, {cfg.epochs} epochs, "
        f"seed {cfg.seed}" + ("" if cfg.lr_schedule == "constant" else
                              f", {cfg.lr_schedule} schedule with a {cfg.warmup_epochs}-epoch "
                              f"warm-up")
        + (", hflip" if cfg.hflip else "") + ("" if cfg.precision == "float32" else
                                              f", {cfg.precision}"))
    report_epochs = sorted({*cfg.report_epochs, cfg.epochs})
    snapshots: dict[int, TrainState] = {}

    def after_epoch(record: EpochRecord, state: TrainState, step_losses: np.ndarray) -> None:
        nonlocal after_first_epoch
        local = parallel.local_copy(state)  # what the reporting after training predicts with
        if record.epoch in report_epochs:  # a copy here (the state is donated next step)
            snapshots[record.epoch] = jax.device_put(local, may_alias=False)
        if board is not None:
            log_epoch(board, cfg, data, record, local, step_losses)
        if after_first_epoch is not None:
            after_first_epoch()
            after_first_epoch = None

    fingerprint = run_fingerprint(
        cfg, [data.train_inputs, data.train_targets, *data.task.fingerprint_arrays()],
        len(data.train_inputs))
    with contextlib.ExitStack() as closing:  # writers closed however training ends
        board = (tensorboard.RunLog(Path(cfg.output_dir) / "tensorboard" / run_name(cfg),
                                    {name: getattr(cfg, name) for name in HPARAMS})
                 if cfg.tensorboard and parallel.is_main_process() else None)
        if board is not None:
            closing.callback(board.close)
        checkpoints = Checkpoints(
            f"{cfg.checkpoint_dir or Path(cfg.output_dir) / 'checkpoints'}/{run_name(cfg)}",
            fingerprint,
            epochs=cfg.epochs, keep_epochs=report_epochs, policy=CheckpointPolicy(
                every=cfg.checkpoint_every, keep=cfg.keep_checkpoints, resume=cfg.resume))
        closing.callback(checkpoints.close)
        result = fit(model, objective, (data.train_inputs, data.train_targets),
                     (data.test_inputs, data.test_targets), TrainOptions.of(cfg), log=log,
                     on_epoch=after_epoch, checkpoints=checkpoints, progress=on_terminal())
        reporting_start = time.perf_counter()
        for epoch in report_epochs:  # epochs trained before a resume come from checkpoints
            if epoch not in snapshots:
                snapshots[epoch] = parallel.local_copy(
                    checkpoints.restore(epoch, like=result.state)[0])
        runs = []
        for epoch in report_epochs:
            run_cfg = cfg.replace(epochs=epoch, report_epochs=())
            row = result_row(run_cfg, result.history[:epoch], result.compile_seconds)
            row.update(prediction_quality(run_cfg, snapshots[epoch], data))
            runs.append(RunOutput(run_cfg, row, snapshots[epoch], data))
        if board is not None:
            board.scalars(board.last_step, {
                f"quality/{rendering}/{name}": value
                for rendering, values in runs[-1].row["quality_by_rendering"].items()
                for name, value in values.items()})
    # The training's phases, on its full-length row (the rows of reported epochs share them).
    runs[-1].row["phases"] = {**result.phases,
                              "reporting": time.perf_counter() - reporting_start}
    return runs


# The settings a run's TensorBoard hparams show.
HPARAMS = settings_where(hparam=True)


def log_epoch(board: tensorboard.RunLog, cfg: ExperimentConfig, data: TaskData,
              record: EpochRecord, state: TrainState, step_losses: np.ndarray) -> None:
    """One epoch in TensorBoard: its steps' train losses, its validation numbers and the sample
    grid of the state after it (grey input | truth | prediction), at the epoch's last step."""
    first_step = (record.epoch - 1) * len(step_losses) + 1
    board.step_losses(first_step, step_losses)
    step = first_step + len(step_losses) - 1
    board.scalars(step, {"val/loss": record.val_loss, "val/accuracy": record.val_accuracy,
                         "train/epoch_loss": record.train_loss,
                         "speed/train_images_per_sec": record.train_images_per_sec})
    count = cfg.num_samples
    prediction = predict_renderings(cfg, state, data, count)[data.task.default_rendering]
    board.image(step, "samples", tensorboard.sample_strip([
        data.test_inputs[:count], data.test_images[:count].astype(np.float32) / 255.0,
        prediction]))


def prediction_quality(cfg: ExperimentConfig, state: TrainState, data: TaskData
                       ) -> dict[str, Any]:
    """Image-quality metrics of the test-set predictions, under ``quality_by_rendering`` for
    every rendering of the task, and flat for its default one."""
    truth = data.test_images.astype(np.float32) / 255.0
    by_rendering = {name: metrics.image_quality(rgb, truth)
                    for name, rgb in predict_renderings(cfg, state, data).items()}
    return {**by_rendering[data.task.default_rendering], "quality_by_rendering": by_rendering}


def predict_renderings(cfg: ExperimentConfig, state: TrainState, data: TaskData,
                       count: int | None = None,
                       temperatures: dict[str, float | None] | None = None,
                       inputs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """RGB predictions in [0, 1] for the first ``count`` test inputs (or of ``inputs``), by
    rendering name → temperature (default: the task's renderings), predicted and rendered
    batch by batch at the training batch size (a distribution over hundreds of ab bins for a
    whole test set would not fit in memory); the last batch is zero-padded, so that every call
    for a model and task runs one compiled program."""
    task = data.task
    temperatures = temperatures or task.renderings(cfg.temperature)
    render = _renderer(build_model(model_spec(cfg, task)), task, tuple(temperatures.items()))
    inputs = (data.test_inputs if inputs is None else inputs)[:count]
    rendered: dict[str, list[np.ndarray]] = {name: [] for name in temperatures}
    for i in range(0, len(inputs), cfg.batch_size):
        batch = inputs[i:i + cfg.batch_size]
        padding = [(0, cfg.batch_size - len(batch))] + [(0, 0)] * (batch.ndim - 1)
        for name, rgb in render(state, np.pad(batch, padding)).items():
            rendered[name].append(np.asarray(rgb)[:len(batch)])
    return {name: np.concatenate(parts) for name, parts in rendered.items()}


@functools.cache  # runs of one model and task share the compiled program
def _renderer(model: nn.Module, task: Task, temperatures: tuple[tuple[str, float | None], ...]
              ) -> Callable[[TrainState, np.ndarray], dict[str, jax.Array]]:
    """One compiled program: a batch's predictions (running BatchNorm statistics) rendered to
    RGB at each of ``temperatures``."""

    def render(state: TrainState, inputs: jax.Array) -> dict[str, jax.Array]:
        outputs = model.apply({"params": state.params, "batch_stats": state.batch_stats},
                              inputs, train=False)
        return {name: task.render(inputs, outputs, temperature)
                for name, temperature in temperatures}

    return compiled(render)


def result_row(cfg: ExperimentConfig, records: Sequence[EpochRecord],
               compile_seconds: float) -> dict[str, Any]:
    """The results.json contract: configuration, final metrics, best epoch, speed, history."""
    history = [dataclasses.asdict(record) for record in records]
    final = history[-1]
    row: dict[str, Any] = {
        **{name: getattr(cfg, name) for name in settings_where(row=True)},
        "train_loss": final["train_loss"], "val_loss": final["val_loss"],
        "val_accuracy": final["val_accuracy"],
        "train_images_per_sec": statistics.median(r["train_images_per_sec"] for r in history),
        "compile_seconds": compile_seconds, "wall_seconds": final["elapsed"],
        "conv_implementation": conv_implementation(cfg.conv_impl, cfg.precision),
    }
    if final["val_accuracy"] is not None:
        best = max(history, key=lambda r: r["val_accuracy"])
        row.update(best_val_accuracy=best["val_accuracy"], best_epoch=best["epoch"])
    row["history"] = history
    return row
