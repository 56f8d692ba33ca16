"""Shared absl flags for every experiment script, and the error-handling entry point."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from absl import app, flags
from absl import logging as absl_logging

from jaxcolor import parallel
from jaxcolor.config import ExperimentConfig
from jaxcolor.data import SOURCES
from jaxcolor.errors import UserError
from jaxcolor.layers import CONV_INITS
from jaxcolor.objectives import LOSSES
from jaxcolor.train import EPOCH_LOOPS

FLAGS = flags.FLAGS


def define_flags(default_model: str = "cnn", default_epochs: int = 25) -> None:
    """Define the flags every experiment accepts (call once, at import of the script)."""
    defaults = ExperimentConfig(experiment="", model=default_model, epochs=default_epochs)
    flags.DEFINE_string("model", defaults.model, "Model: cnn, unet or regression_cnn.")
    flags.DEFINE_integer("epochs", defaults.epochs, "Training epochs.")
    flags.DEFINE_integer("batch_size", defaults.batch_size, "Training batch size.")
    flags.DEFINE_float("learning_rate", defaults.learning_rate, "Adam learning rate.")
    flags.DEFINE_integer("num_filters", defaults.num_filters, "NF, the base channel count.")
    flags.DEFINE_integer("kernel", defaults.kernel, "Convolution kernel size (odd).")
    flags.DEFINE_enum("conv_init", defaults.conv_init, list(CONV_INITS),
                      "Conv weight init: pytorch (torch default, the reference's) or lecun.")
    flags.DEFINE_enum("loss", defaults.loss, LOSSES,
                      "Classification loss: plain or class-rebalanced cross-entropy.")
    flags.DEFINE_integer("num_colours", defaults.num_colours, "k-means colour classes.")
    flags.DEFINE_integer("seed", defaults.seed, "PRNG seed for initialisation and shuffling.")
    flags.DEFINE_boolean("hflip", defaults.hflip, "Augment: mirror each training image (and "
                         "its targets) left-right with probability 1/2, drawn per step.")
    flags.DEFINE_string("category", defaults.category,
                        "Image category (CIFAR-10 class name), or 'all' for every class.")
    flags.DEFINE_float("temperature", defaults.temperature, "Softmax temperature of the "
                       "annealed-mean rendering of a classifier (Zhang et al.: 0.38).")
    flags.DEFINE_enum("source", None, SOURCES,
                      "Image source; default: folder when --image_dir is set, else tfds.")
    flags.DEFINE_string("image_dir", None, "Image folder PATH/{train,test}/{class}/*.jpg|png "
                        "(default: $JAXCOLOR_IMAGE_DIR).")
    flags.DEFINE_string("tfds_data_dir", None, "TFDS data dir (default: tfds's own).")
    flags.DEFINE_integer("max_images", 0, "Use at most this many images per split (0 = all).")
    flags.DEFINE_integer("num_samples", defaults.num_samples, "Test images in sample grids.")
    flags.DEFINE_string("output_dir", None, "Where results go (default: results/<script name>).")
    flags.DEFINE_integer("checkpoint_every", defaults.checkpoint_every,
                         "Checkpoint every N epochs (reported and last epochs always).")
    flags.DEFINE_integer("keep_checkpoints", defaults.keep_checkpoints,
                         "Newest checkpoints kept per run (reported epochs are always kept).")
    flags.DEFINE_boolean("distributed", False, "Multi-process run (TPU pod slice, GPU cluster): "
                         "call jax.distributed.initialize() first (or set "
                         f"{parallel.DISTRIBUTED_ENV}=1).")
    flags.DEFINE_enum("epoch_loop", defaults.epoch_loop, list(EPOCH_LOOPS),
                      "steps: one compiled call per batch; scan: each epoch as one compiled "
                      "lax.scan over its batches (same results; ~40x slower on XLA:CPU).")
    flags.DEFINE_boolean("resume", defaults.resume, "Continue each run from its newest "
                         "checkpoint in --output_dir; --noresume deletes them and starts afresh.")


def config_from_flags(experiment: str, **overrides) -> ExperimentConfig:
    """The validated config of the parsed flags; ``overrides`` replace flag values."""
    values = dict(
        experiment=experiment, model=FLAGS.model, loss=FLAGS.loss, epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
        num_filters=FLAGS.num_filters, kernel=FLAGS.kernel, conv_init=FLAGS.conv_init,
        num_colours=FLAGS.num_colours, temperature=FLAGS.temperature,
        seed=FLAGS.seed, hflip=FLAGS.hflip, category=FLAGS.category, source=FLAGS.source or "",
        image_dir=FLAGS.image_dir, tfds_data_dir=FLAGS.tfds_data_dir,
        max_images=FLAGS.max_images, num_samples=FLAGS.num_samples,
        output_dir=FLAGS.output_dir or os.path.join("results", experiment),
        checkpoint_every=FLAGS.checkpoint_every, keep_checkpoints=FLAGS.keep_checkpoints,
        resume=FLAGS.resume, epoch_loop=FLAGS.epoch_loop)
    values.update(overrides)
    return ExperimentConfig(**values).validate()


def parse_list(flag: str, text: str, kind: type = int) -> list:
    """``"100,50"`` → [100, 50] (``kind`` int or float), or a UserError naming the flag."""
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--{flag}={text!r} must be a comma-separated list of "
                        f"{kind.__name__}s.") from None
    if not values or min(values) <= 0:
        raise UserError(f"--{flag}={text!r} must list positive numbers.")
    return values


def run(main: Callable[[list[str]], None]) -> None:
    """``absl.app.run`` that turns a UserError into one ``error: …`` line and exit status 2."""

    def guarded(argv: list[str]) -> None:
        if not FLAGS["verbosity"].present:  # Orbax logs every checkpoint step at INFO
            absl_logging.set_verbosity(absl_logging.WARNING)
        try:
            if "distributed" in FLAGS:
                parallel.initialize_distributed(FLAGS.distributed)
            main(argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)

    # jax logs at INFO that it found no TPU on every CPU/GPU start; keep the console for results.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    app.run(guarded)


DEFAULT_TEXT = os.path.join("..", "shared", "data", "tinyshakespeare", "input.txt")
DEFAULT_SNAPSHOT = os.path.join("results", "r0_char_rnn", "model.npz")


def define_char_rnn_flags() -> None:
    """Flags shared by the char-RNN scripts."""
    flags.DEFINE_string("text", os.environ.get("JAXCOLOR_TEXT", DEFAULT_TEXT),
                        "Training text file (default: $JAXCOLOR_TEXT or tiny Shakespeare).")
    flags.DEFINE_string("checkpoint", DEFAULT_SNAPSHOT, "Char-RNN snapshot (.npz) to load.")
    flags.DEFINE_integer("seed", 0, "PRNG seed.")
    flags.DEFINE_string("output_dir", None, "Where results go (default: results/<script>).")


def read_text(path: str) -> str:
    """The text of a training file, or a UserError naming the --text flag."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"--text={path} cannot be read: {err}.") from err
    if len(text) < 100:
        raise UserError(f"--text={path} holds only {len(text)} characters; use a longer text.")
    return text
