"""Before training: check a configuration against the registries, load its images and build
its task's arrays (fitting the k-means palette where the task uses one)."""

from __future__ import annotations

import time

import jax
import numpy as np

from jaxcolor import data
from jaxcolor.colour import lab
from jaxcolor.colour.palette import colour_palette
from jaxcolor.config import ExperimentConfig
from jaxcolor.errors import UserError
from jaxcolor.models import CONV_IMPLEMENTATIONS, CONV_INITS, MODELS, conv_implementation
from jaxcolor.runner.run import Log, log_line
from jaxcolor.tasks import TaskData, build_task, check_task, make_task_data
from jaxcolor.timing import add_seconds
from jaxcolor.training import EPOCH_LOOPS, optimizer, parallel


def preflight(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` if every name in it is known and its files readable, else a UserError naming the
    flag: run before any training, so a bad later run of a grid fails first."""
    if cfg.conv_impl not in CONV_IMPLEMENTATIONS:
        raise UserError(f"--conv_impl={cfg.conv_impl!r} is unknown; use one of "
                        f"{', '.join(CONV_IMPLEMENTATIONS)}.")
    if cfg.conv_impl == "native":
        conv_implementation("native", cfg.precision)  # where they cannot: one line first
    if cfg.model not in MODELS:
        raise UserError(f"--model={cfg.model!r} is unknown; use one of {', '.join(MODELS)}.")
    if cfg.conv_init not in CONV_INITS:
        raise UserError(f"--conv_init={cfg.conv_init!r} is unknown; use one of "
                        f"{', '.join(CONV_INITS)}.")
    if cfg.epoch_loop not in EPOCH_LOOPS:
        raise UserError(f"--epoch_loop={cfg.epoch_loop!r} is unknown; use one of "
                        f"{', '.join(EPOCH_LOOPS)}.")
    optimizer.check_schedule(cfg.lr_schedule)
    check_task(cfg.task, cfg.loss)
    if cfg.ab_bins_file:
        lab.load_ab_bins(cfg.ab_bins_file)
    return cfg


def load_images(cfg: ExperimentConfig, log: Log = log_line) -> dict[str, np.ndarray]:
    """The uint8 images of the configured category/source, by split."""
    source, image_dir = data.resolve_source(cfg.source, cfg.image_dir)
    log(f"data: loading '{cfg.category}' images from {source}…")
    start = time.perf_counter()
    images = {split: data.load_category(source, cfg.category, split, image_dir=image_dir,
                                        tfds_data_dir=cfg.tfds_data_dir,
                                        max_images=cfg.max_images,
                                        process_share=parallel.process_share)
              for split in data.SPLITS}
    data.check_has_colour(images["train"], f"{image_dir}/train/{cfg.category}" if image_dir
                          else f"the {source} source's '{cfg.category}' category")
    log(f"data: {len(images['train'])} train / {len(images['test'])} test '{cfg.category}' images "
        f"from {source}{f' ({image_dir})' if image_dir else ''}, "
        f"{time.perf_counter() - start:.1f}s")
    return images


def image_origin(cfg: ExperimentConfig, images: dict[str, np.ndarray]) -> dict[str, object]:
    """Where the images of a run came from and how many there were (every process's share),
    for its results row."""
    source, image_dir = data.resolve_source(cfg.source, cfg.image_dir)
    return {"source": f"{source} ({image_dir})" if image_dir else source,
            **{split: len(images[split]) * jax.process_count() for split in data.SPLITS}}


def prepare_task(cfg: ExperimentConfig, images: dict[str, np.ndarray], log: Log = log_line,
                 phases: dict[str, float] | None = None) -> TaskData:
    """The configured task's arrays of ``images``; adds its seconds to ``phases``: "palette"
    (the k-means colours, where the task uses them) and "data" (the rest)."""
    start = time.perf_counter()
    palette_seconds = 0.0

    def palette() -> np.ndarray:  # multi-process: process 0's colours (from its share) everywhere
        nonlocal palette_seconds
        palette_start = time.perf_counter()
        colours = parallel.broadcast_from_main(colour_palette(
            images["train"], cfg.num_colours, cfg.colour_seed, name=f"colours-{cfg.category}",
            log=log))
        palette_seconds = time.perf_counter() - palette_start
        return colours

    task = build_task(cfg.task, palette=palette, ab_bins_file=cfg.ab_bins_file)
    task_data = make_task_data(task, images["train"], images["test"])
    seconds = time.perf_counter() - start
    log(f"task {cfg.task}: {task.describe()}, {seconds:.1f}s")
    if phases is not None:
        add_seconds(phases, "palette", palette_seconds)
        add_seconds(phases, "data", seconds - palette_seconds)
    return task_data


def load_task_data(cfg: ExperimentConfig, log: Log = log_line) -> TaskData:
    """Images of the configured category/source → the task's arrays."""
    return prepare_task(cfg, load_images(cfg, log), log)
