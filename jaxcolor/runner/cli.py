"""The absl flags every colourization script shares, and the validated config they give."""

from __future__ import annotations

import os

from absl import flags

from jaxcolor import app
from jaxcolor.config import ExperimentConfig
from jaxcolor.data import SOURCES
from jaxcolor.models import CONV_INITS, MODELS
from jaxcolor.runner.prepare import preflight
from jaxcolor.tasks import LOSSES
from jaxcolor.training import EPOCH_LOOPS, LR_SCHEDULES, parallel

FLAGS = flags.FLAGS


def define_flags(default_model: str = "cnn", default_epochs: int = 25) -> None:
    """Define the flags every experiment accepts (call once, at import of the script), listed
    by the script's ``--helpshort`` beside its own."""
    app.define_as_script_flags(lambda: _define_shared_flags(default_model, default_epochs))


def _define_shared_flags(default_model: str, default_epochs: int) -> None:
    defaults = ExperimentConfig(experiment="", model=default_model, epochs=default_epochs)
    flags.DEFINE_string("model", defaults.model, f"Model: {', '.join(MODELS)}.")
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
    flags.DEFINE_enum("lr_schedule", defaults.lr_schedule, list(LR_SCHEDULES),
                      "constant: --learning_rate throughout (the assignment's); cosine: decay it "
                      "to 0 over the run (optax), after --warmup_epochs of linear warm-up.")
    flags.DEFINE_integer("warmup_epochs", defaults.warmup_epochs,
                         "Epochs of linear warm-up from 0 (with --lr_schedule=cosine).")
    flags.DEFINE_string("category", defaults.category,
                        "Image category (CIFAR-10 class name), or 'all' for every class.")
    flags.DEFINE_float("temperature", defaults.temperature, "Softmax temperature of the "
                       "annealed-mean rendering of a classifier (Zhang et al.: 0.38).")
    flags.DEFINE_enum("source", None, SOURCES,
                      "Image source; default: folder when --image_dir is set, else tfds.")
    flags.DEFINE_string("image_dir", None, "Image folder PATH/{train,test}/{class}/*.jpg|png "
                        "of colour images (16-bit ones scaled to 8 bits, transparent pixels "
                        "composited on white; default: $JAXCOLOR_IMAGE_DIR).")
    flags.DEFINE_string("tfds_data_dir", None, "TFDS data dir (default: tfds's own).")
    flags.DEFINE_integer("max_images", 0, "Use at most this many images per split (0 = all).")
    flags.DEFINE_integer("num_samples", defaults.num_samples, "Test images in sample grids.")
    flags.DEFINE_string("output_dir", None, "Where results go (default: results/<script name>).")
    flags.DEFINE_integer("checkpoint_every", defaults.checkpoint_every,
                         "Checkpoint every N epochs; 0: only the reported and last epochs "
                         "(those always).")
    flags.DEFINE_integer("keep_checkpoints", defaults.keep_checkpoints,
                         "Newest checkpoints kept per run (reported epochs are always kept).")
    flags.DEFINE_boolean("distributed", False, "Multi-process run (TPU pod slice, GPU cluster): "
                         "call jax.distributed.initialize() first (or set "
                         f"{parallel.DISTRIBUTED_ENV}=1).")
    flags.DEFINE_enum("epoch_loop", defaults.epoch_loop, list(EPOCH_LOOPS),
                      "steps: one compiled call per batch; scan: each epoch as one compiled "
                      "lax.scan over its batches (same results; as fast with the native CPU "
                      "kernels, ~40x slower on XLA:CPU's own convolutions).")
    flags.DEFINE_boolean("tensorboard", defaults.tensorboard, "Write TensorBoard event files "
                         "to <output_dir>/tensorboard/<run>/ (tensorboard --logdir results/).")
    flags.DEFINE_string("checkpoint_dir", None, "Checkpoints go to <this>/<run>/, a local folder "
                        "or gs://bucket/path (preemptible cloud runs resume from it); default "
                        "<output_dir>/checkpoints.")
    flags.DEFINE_boolean("resume", defaults.resume, "Continue each run from its newest "
                         "checkpoint (in --checkpoint_dir); --noresume deletes them and starts "
                         "afresh.")


def config_from_flags(experiment: str, **overrides) -> ExperimentConfig:
    """The validated config of the parsed flags; ``overrides`` replace flag values. Joins a
    multi-process run first (``--distributed``), before anything touches JAX's devices."""
    parallel.initialize_distributed(FLAGS.distributed)
    values = dict(
        experiment=experiment, model=FLAGS.model, loss=FLAGS.loss, epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
        num_filters=FLAGS.num_filters, kernel=FLAGS.kernel, conv_init=FLAGS.conv_init,
        num_colours=FLAGS.num_colours, temperature=FLAGS.temperature,
        seed=FLAGS.seed, hflip=FLAGS.hflip, lr_schedule=FLAGS.lr_schedule,
        warmup_epochs=FLAGS.warmup_epochs, category=FLAGS.category, source=FLAGS.source or "",
        image_dir=FLAGS.image_dir, tfds_data_dir=FLAGS.tfds_data_dir,
        max_images=FLAGS.max_images, num_samples=FLAGS.num_samples,
        output_dir=FLAGS.output_dir or os.path.join("results", experiment),
        checkpoint_every=FLAGS.checkpoint_every, keep_checkpoints=FLAGS.keep_checkpoints,
        resume=FLAGS.resume, epoch_loop=FLAGS.epoch_loop, tensorboard=FLAGS.tensorboard,
        checkpoint_dir=FLAGS.checkpoint_dir or "")
    values.update(overrides)
    return preflight(ExperimentConfig(**values))
