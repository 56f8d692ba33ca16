"""Compose data → model → training → figures/tables. Experiment scripts only choose what to run."""

from __future__ import annotations

import dataclasses
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor import colours, data, lab, metrics, parallel, plots, report, tasks, train
from jaxcolor.checkpoint import CheckpointPolicy, Checkpoints
from jaxcolor.config import ExperimentConfig
from jaxcolor.errors import UserError
from jaxcolor.models import build_model
from jaxcolor.objectives import Objective, rebalanced_classification, rebalancing_weights

Log = Callable[[str], None]


def log_line(text: str) -> None:
    print(text, flush=True)


def prepare_output_dir(path: str) -> Path:
    """Create the output folder and check that it is writable, before any training. The probe
    file has a unique name: processes of one --distributed run check the same folder at once
    (one process's unlink of a shared probe name failed the other's)."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise UserError(f"--output_dir={path} is not writable: {err.strerror or err}.") from err
    return out


def load_images(cfg: ExperimentConfig, log: Log = log_line) -> dict[str, np.ndarray]:
    """The uint8 images of the configured category/source, by split."""
    source, image_dir = data.resolve_source(cfg.source, cfg.image_dir)
    start = time.perf_counter()
    images = {split: data.load_category(source, cfg.category, split, image_dir=image_dir,
                                        tfds_data_dir=cfg.tfds_data_dir,
                                        max_images=cfg.max_images,
                                        process_share=parallel.process_share)
              for split in data.SPLITS}
    log(f"data: {len(images['train'])} train / {len(images['test'])} test '{cfg.category}' images "
        f"from {source}{f' ({image_dir})' if image_dir else ''}, "
        f"{time.perf_counter() - start:.1f}s")
    return images


def make_task_data(cfg: ExperimentConfig, images: dict[str, np.ndarray],
                   log: Log = log_line) -> tasks.TaskData:
    """The configured task's arrays; the RGB tasks also fit their k-means colour palette."""
    start = time.perf_counter()
    palette = None
    if cfg.task not in tasks.LAB_TASKS:
        # Multi-process: process 0's colours (from its share of the pixels) everywhere.
        palette = parallel.broadcast_from_main(colours.colour_palette(
            images["train"], cfg.num_colours, cfg.colour_seed, name=f"colours-{cfg.category}"))
    ab_bins = (lab.load_ab_bins(cfg.ab_bins_file) if cfg.ab_bins_file and cfg.task == "lab_bins"
               else None)
    task_data = tasks.make_task(cfg.task, images["train"], images["test"], palette, ab_bins)
    what = f"{cfg.num_colours} colours" if palette is not None else "CIE Lab"
    if task_data.ab_bins is not None:
        what += f", {len(task_data.ab_bins)} ab bins"
    log(f"task {cfg.task}: {what}, {time.perf_counter() - start:.1f}s")
    return task_data


def load_task_data(cfg: ExperimentConfig, log: Log = log_line) -> tasks.TaskData:
    """Images of the configured category/source → the task's arrays (and colour palette)."""
    return make_task_data(cfg, load_images(cfg, log), log)


@dataclasses.dataclass(frozen=True)
class RunOutput:
    config: ExperimentConfig
    row: dict[str, Any]
    state: train.TrainState
    task_data: tasks.TaskData  # what it was trained and evaluated on (shared, not copied)

    @property
    def label(self) -> str:
        cfg = self.config
        loss = "" if cfg.loss == "cross_entropy" else f" {cfg.loss}"
        return (f"{cfg.model} {cfg.task}{loss} bs{cfg.batch_size} lr{cfg.learning_rate:g} "
                f"{cfg.epochs}ep")

    @property
    def slug(self) -> str:
        return f"{run_name(self.config)}_e{self.config.epochs}"


def model_for(cfg: ExperimentConfig, task_data: tasks.TaskData):
    return build_model(cfg.model, num_filters=cfg.num_filters, kernel=cfg.kernel,
                       num_outputs=task_data.num_outputs, conv_init=cfg.conv_init,
                       **head_for(cfg, task_data))


def head_for(cfg: ExperimentConfig, task_data: tasks.TaskData) -> dict[str, int]:
    """The reference head for the assignment's tasks; for the hundreds of ab bins an NF-wide
    last block and a 1×1 classifier (the reference head would cost ~Q²·k² per pixel)."""
    if task_data.task == "lab_bins":
        return {"head_features": cfg.num_filters, "final_kernel": 1}
    return {}


def train_and_evaluate(cfg: ExperimentConfig, task_data: tasks.TaskData,
                       log: Log = log_line) -> list[RunOutput]:
    """Train one configuration; one results row per reported epoch (the last one at least)."""
    if cfg.batch_size > len(task_data.train_inputs):
        raise UserError(f"--batch_size={cfg.batch_size} is larger than the "
                        f"{len(task_data.train_inputs)} training images; use a smaller one.")
    if cfg.loss == "rebalanced":
        task_data = dataclasses.replace(task_data, objective=rebalanced_objective(task_data))
    model = model_for(cfg, task_data)
    log(f"== {cfg.experiment}: {cfg.model}, {cfg.task}, {cfg.loss}, batch {cfg.batch_size}, lr "
        f"{cfg.learning_rate:g}, NF {cfg.num_filters}, kernel {cfg.kernel}, {cfg.epochs} epochs, "
        f"seed {cfg.seed}")
    report_epochs = sorted({*cfg.report_epochs, cfg.epochs})
    snapshots: dict[int, train.TrainState] = {}

    def keep_snapshot(epoch: int, state: train.TrainState) -> None:
        if epoch in report_epochs:  # a copy on this process (the state is donated next step)
            snapshots[epoch] = jax.tree.map(jnp.copy, parallel.local_copy(state))

    checkpoints = Checkpoints(
        Path(cfg.output_dir) / "checkpoints" / run_name(cfg), run_fingerprint(cfg, task_data),
        epochs=cfg.epochs, keep_epochs=report_epochs, policy=CheckpointPolicy(
            every=cfg.checkpoint_every, keep=cfg.keep_checkpoints, resume=cfg.resume))
    try:
        fit = train.fit(model, task_data, epochs=cfg.epochs, batch_size=cfg.batch_size,
                        learning_rate=cfg.learning_rate, seed=cfg.seed, log=log,
                        on_epoch=keep_snapshot, checkpoints=checkpoints,
                        epoch_loop=cfg.epoch_loop, hflip=cfg.hflip)
        for epoch in report_epochs:  # epochs trained before a resume come from checkpoints
            if epoch not in snapshots:
                snapshots[epoch] = parallel.local_copy(
                    checkpoints.restore(epoch, like=fit.state)[0])
    finally:
        checkpoints.close()
    runs = []
    for epoch in report_epochs:
        run_cfg = cfg.replace(epochs=epoch, report_epochs=())
        row = result_row(run_cfg, fit.history[:epoch], fit.compile_seconds)
        row.update(prediction_quality(run_cfg, snapshots[epoch], task_data))
        runs.append(RunOutput(run_cfg, row, snapshots[epoch], task_data))
    return runs


def rebalanced_objective(task_data: tasks.TaskData) -> Objective:
    """The task's loss weighted by class rebalancing (λ = 0.5) from its training targets."""
    if task_data.task == "lab_bins":
        weights = lab.rebalancing_weights(task_data.train_targets, task_data.ab_bins)
        return lab.soft_encoded_objective(task_data.ab_bins, weights)
    weights = rebalancing_weights(task_data.train_targets, len(task_data.palette))
    return rebalanced_classification(weights)


def run_name(cfg: ExperimentConfig) -> str:
    """Names one training run whatever its length (a longer run extends a shorter one)."""
    return (f"{cfg.model}_{cfg.task}_{cfg.loss}_bs{cfg.batch_size}_lr{cfg.learning_rate:g}"
            f"_nf{cfg.num_filters}_k{cfg.kernel}_s{cfg.seed}{'_hflip' if cfg.hflip else ''}")


def run_fingerprint(cfg: ExperimentConfig, task_data: tasks.TaskData) -> dict[str, Any]:
    """What must match for a checkpoint to continue this run: every setting that changes the
    training trajectory, and a digest of the training data (over every process's share) and
    palette."""
    digest = hashlib.sha256()
    arrays = [task_data.train_inputs, task_data.train_targets, task_data.palette]
    if cfg.ab_bins_file and task_data.ab_bins is not None:  # built-in bins: part of the code
        arrays.append(task_data.ab_bins)
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    settings = ("model", "task", "loss", "batch_size", "learning_rate", "num_filters", "kernel",
                "conv_init", "num_colours", "seed", "category")
    return {**{name: getattr(cfg, name) for name in settings},
            **({"hflip": True} if cfg.hflip else {}),  # checkpoints made before the flag resume
            "train_images": len(task_data.train_inputs),
            "data_sha256": parallel.digest_over_processes(digest.digest()).hex()[:16]}


def prediction_quality(cfg: ExperimentConfig, state: train.TrainState,
                       task_data: tasks.TaskData) -> dict[str, Any]:
    """Image-quality metrics of the test-set predictions. The flat keys score the default
    rendering (:func:`default_rendering`); classifiers also get every rendering of their
    distribution under ``quality_by_rendering``."""
    truth = task_data.test_images.astype(np.float32) / 255.0
    by_rendering = {name: metrics.image_quality(rgb, truth)
                    for name, rgb in predict_renderings(cfg, state, task_data).items()}
    if not task_data.classifies:
        return by_rendering["prediction"]
    return {**by_rendering[default_rendering(task_data)], "quality_by_rendering": by_rendering}


def rendering_temperatures(cfg: ExperimentConfig, task_data: tasks.TaskData
                           ) -> dict[str, float | None]:
    """How the task's outputs become RGB: a classifier's distribution at each temperature of
    :data:`colours.RENDERING_TEMPERATURES` (``annealed_mean`` at ``cfg.temperature``); a
    regression output as it is."""
    if not task_data.classifies:
        return {"prediction": None}
    return {**colours.RENDERING_TEMPERATURES, "annealed_mean": cfg.temperature}


def default_rendering(task_data: tasks.TaskData) -> str:
    """The rendering a classifier is scored by in flat result keys: Zhang et al.'s annealed
    mean for the ab bins, the most likely palette colour for the assignment's 24 colours."""
    return "annealed_mean" if task_data.task == "lab_bins" else "argmax"


def predict_renderings(cfg: ExperimentConfig, state: train.TrainState,
                       task_data: tasks.TaskData, count: int | None = None,
                       temperatures: dict[str, float | None] | None = None,
                       inputs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """RGB predictions in [0, 1] for the first ``count`` test inputs (or of ``inputs``), by
    rendering name → temperature (default: :func:`rendering_temperatures`), predicted and
    rendered batch by batch at the training batch size (a distribution over hundreds of ab bins
    for a whole test set would not fit in memory)."""
    predict = train.make_predict(model_for(cfg, task_data))
    temperatures = temperatures or rendering_temperatures(cfg, task_data)
    inputs = (task_data.test_inputs if inputs is None else inputs)[:count]
    rendered: dict[str, list[np.ndarray]] = {name: [] for name in temperatures}
    for i in range(0, len(inputs), cfg.batch_size):
        batch = inputs[i:i + cfg.batch_size]
        outputs = predict(state, batch)
        for name, temperature in temperatures.items():
            rendered[name].append(tasks.render(task_data, batch, outputs, temperature))
    return {name: np.concatenate(parts) for name, parts in rendered.items()}


def result_row(cfg: ExperimentConfig, records: Sequence[train.EpochRecord],
               compile_seconds: float) -> dict[str, Any]:
    """The results.json contract: configuration, final metrics, best epoch, speed, history."""
    history = [dataclasses.asdict(record) for record in records]
    final = history[-1]
    row: dict[str, Any] = {
        "experiment": cfg.experiment, "model": cfg.model, "task": cfg.task, "loss": cfg.loss,
        "category": cfg.category, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate, "num_filters": cfg.num_filters, "kernel": cfg.kernel,
        "conv_init": cfg.conv_init, "hflip": cfg.hflip,
        "seed": cfg.seed, "train_loss": final["train_loss"], "val_loss": final["val_loss"],
        "val_accuracy": final["val_accuracy"],
        "train_images_per_sec": statistics.median(r["train_images_per_sec"] for r in history),
        "compile_seconds": compile_seconds, "wall_seconds": final["elapsed"],
    }
    if final["val_accuracy"] is not None:
        best = max(history, key=lambda r: r["val_accuracy"])
        row.update(best_val_accuracy=best["val_accuracy"], best_epoch=best["epoch"])
    row["history"] = history
    return row


def sample_columns(run: RunOutput, count: int) -> list[tuple[str, np.ndarray]]:
    """Input / ground truth / (truth in the palette) / each rendering of the prediction, for a
    few test images."""
    task_data = run.task_data
    truth = task_data.test_images[:count].astype(np.float32) / 255.0
    columns = [(f"input ({task_data.task})", task_data.test_inputs[:count]),
               ("ground truth", truth)]
    if len(task_data.palette) and task_data.classifies:
        palette = task_data.palette
        columns.append((f"truth, {len(palette)} colours", palette[task_data.test_targets[:count]]))
    for name, rgb in predict_renderings(run.config, run.state, task_data, count).items():
        columns.append((f"{run.config.model}, {name}", rgb))
    return columns


RESULT_COLUMNS = [
    ("model", "model"), ("task", "task"), ("batch_size", "batch"), ("epochs", "epochs"),
    ("learning_rate", "lr"), ("train_loss", "train loss"), ("val_loss", "val loss"),
    ("val_accuracy", "val acc %"), ("best_val_accuracy", "best val acc %"),
    ("best_epoch", "best epoch"), ("train_images_per_sec", "train img/s"),
    ("wall_seconds", "wall s"),
]


QUALITY_COLUMNS = [
    ("model", "model"), ("task", "task"), ("batch_size", "batch"), ("epochs", "epochs"),
    ("rendering", "rendering"), ("psnr", "PSNR dB"), ("ssim", "SSIM"),
    ("colourfulness", "colourfulness"), ("true_colourfulness", "truth colourfulness"),
    ("ab_auc", "ab-error AuC %"), ("ab_auc_rebalanced", "rebalanced AuC %"),
]


def write_outputs(out: Path, title: str, runs: Sequence[RunOutput], *, num_samples: int,
                  notes: str = "") -> None:
    """results.json, results.md, training_curve.png and one sample grid per run."""
    rows = [run.row for run in runs]
    report.write_json_atomic(out / "results.json", rows)
    plots.training_curves([(run.label, run.row["history"]) for run in runs],
                          out / "training_curve.png")
    figures = ["![training curve](training_curve.png)"]
    for run in runs:
        name = f"samples_{run.slug}.png"
        plots.image_grid(sample_columns(run, num_samples), out / name, title=run.label)
        figures.append(f"![samples {run.label}]({name})")
    text = [f"# {title}", "", report.markdown_table(rows, RESULT_COLUMNS), "",
            "Image quality of the test-set predictions in RGB. A classifier's per-pixel "
            "distribution (over palette colours or ab bins) is rendered three ways: argmax = "
            "the most likely class; expected = the probability-weighted mean; annealed_mean = "
            f"the mean at softmax temperature {runs[0].config.temperature:g} (Zhang et al. "
            "2016). Regression outputs are clipped to the sRGB gamut; Lab models keep the "
            "input's L.", "",
            report.markdown_table(report.quality_rows(rows), QUALITY_COLUMNS), ""]
    if notes:
        text += [notes, ""]
    text += ["## Figures", "", *figures, ""]
    report.write_text_atomic(out / "results.md", "\n".join(text))


Notes = Callable[[list["RunOutput"], tasks.TaskData], str]


def run_grid(configs: Sequence[ExperimentConfig], title: str, *,
             notes: Notes = lambda runs, task_data: "", log: Log = log_line) -> list[RunOutput]:
    """Train each config on one shared data load; rewrite the outputs after every run, so an
    interrupted grid keeps the runs that finished."""
    first = configs[0]
    out = prepare_output_dir(first.output_dir)
    images = load_images(first, log)
    task_data_by_task: dict[str, tasks.TaskData] = {}  # configs may mix tasks (q7)
    runs: list[RunOutput] = []
    writes = parallel.is_main_process()  # one writer in multi-process runs
    for cfg in configs:
        if cfg.task not in task_data_by_task:
            task_data_by_task[cfg.task] = make_task_data(cfg, images, log)
        runs.extend(train_and_evaluate(cfg, task_data_by_task[cfg.task], log))
        if writes:
            write_outputs(out, title, runs, num_samples=first.num_samples,
                          notes=notes(runs, task_data_by_task[first.task]))
    if writes:
        log(f"wrote {out}/results.md, results.json and figures")
    return runs
