"""What a grid of runs writes: results.json, results.md, the training curves and one sample
grid per run, each file rewritten atomically."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from jaxcolor import results as tables
from jaxcolor.config import settings_where
from jaxcolor.runner import plots
from jaxcolor.runner.run import RunOutput, predict_renderings


def sample_columns(run: RunOutput, count: int) -> list[tuple[str, np.ndarray]]:
    """Input / ground truth / (truth as the task encodes it) / each rendering of the
    prediction, for a few test images."""
    data = run.task_data
    images = data.test_images[:count]
    columns = [(f"input ({run.config.task})", data.test_inputs[:count]),
               ("ground truth", images.astype(np.float32) / 255.0)]
    truth = data.task.truth_column(data.test_targets[:count])
    if truth is not None:
        columns.append(truth)
    for name, rgb in predict_renderings(run.config, run.state, data, count).items():
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


def samples_name(run: RunOutput) -> str:
    return f"samples_{run.slug}.png"


def write_samples(out: Path, run: RunOutput, num_samples: int) -> None:
    """The run's sample grid (:func:`sample_columns`), drawn once per run."""
    plots.image_grid(sample_columns(run, num_samples), out / samples_name(run), title=run.label)


def images_line(rows: Sequence[dict]) -> str:
    """Which images the rows were trained and tested on, a sentence per distinct set."""
    sets = {(row.get("category"), json.dumps(row["images"], sort_keys=True)): row["images"]
            for row in rows if "images" in row}
    return "\n".join(f"Category '{category}': {images['train']:,} train / {images['test']:,} "
                    f"test images from {images['source']}." for (category, _), images
                    in sets.items())


def write_outputs(out: Path, title: str, runs: Sequence[RunOutput], notes: str = "",
                  log: Callable[[str], None] | None = None) -> None:
    """``runs``' rows merged into results.json (the folder's rows of other settings kept:
    :func:`jaxcolor.results.merge_results`), then results.md and training_curve.png of every
    row; results.md links each run's sample grid (:func:`write_samples`). ``notes`` (the
    question's section) speaks for ``runs``."""
    with tables.results_lock(out):
        rows = tables.merge_results(out, [run.row for run in runs], log,
                                    settings_where(row=True))
        plots.training_curves([(tables.row_label(row), row["history"]) for row in rows
                               if row.get("history")], out / "training_curve.png")
        figures = ["![training curve](training_curve.png)"]
        figures += [f"![samples {tables.row_label(row)}]({row['samples']})" for row in rows
                    if "samples" in row]
        text = [f"# {title}", "", images_line(rows), "",
                tables.markdown_table(rows, RESULT_COLUMNS), "",
                "Image quality of the test-set predictions in RGB. A classifier's per-pixel "
                "distribution (over palette colours or ab bins) is rendered three ways: argmax = "
                "the most likely class; expected = the probability-weighted mean; annealed_mean "
                f"= the mean at softmax temperature {runs[0].config.temperature:g} (Zhang et al. "
                "2016). Regression outputs are clipped to the sRGB gamut; Lab models keep the "
                "input's L.", "",
                tables.markdown_table(tables.quality_rows(rows), QUALITY_COLUMNS), ""]
        if notes:
            text += [notes, ""]
        text += ["## Figures", "", *figures, ""]
        tables.write_text_atomic(out / "results.md", "\n".join(text))
