"""The experiment configuration: one frozen dataclass that validates itself on every
construction and ``replace``.

It depends on nothing above it: names of models, tasks, losses and loops are checked against
their registries by :func:`jaxcolor.runner.preflight`, before any training.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxcolor.data import ALL_CATEGORIES, CIFAR10_CLASSES
from jaxcolor.errors import UserError


@dataclasses.dataclass(frozen=True)
class Setting:
    """Where a config field shows, beside its type and default (its one declaration): ``help``
    for its flag (``flag``: every script has one), and whether it names a training run
    (``run_name``: its format there, e.g. ``"bs{}"``), must match for a checkpoint to resume
    (``fingerprint``), is a TensorBoard hparam (``hparam``) and a column of every results row
    (``row``), how the report's settings column names a value other than the default
    (``label``, e.g. ``"NF {}"``), and the values it may take where they are fixed here
    (``choices``; registries of models, losses, … are checked by their own modules). Run names
    keep the fields and formats they always had (a setting added later names runs only away from
    its default: ``named_at_default=False``), and a checkpoint that does not record a fingerprint
    setting ran with its default, so existing checkpoints resume and a new setting needs no
    special case."""

    help: str = ""
    flag: bool = True
    run_name: str | None = None
    named_at_default: bool = True
    fingerprint: bool = False
    hparam: bool = False
    row: bool = False
    label: str | None = None
    choices: tuple[str, ...] | None = None


# The run-describing settings: in the rows, the hparams and (unless said otherwise) fingerprints.
DESCRIBES = {"fingerprint": True, "hparam": True, "row": True}


def setting(default: Any, help: str = "", **where: Any) -> Any:
    """A config field with its :class:`Setting`."""
    return dataclasses.field(default=default, metadata={"setting": Setting(help, **where)})


def settings_where(**wanted: Any) -> tuple[str, ...]:
    """Names of the config fields whose :class:`Setting` has the ``wanted`` values (e.g.
    ``row=True``), in declaration order."""
    return tuple(field.name for field in dataclasses.fields(ExperimentConfig)
                 if all(getattr(field.metadata["setting"], key) == value
                        for key, value in wanted.items()))


def setting_of(name: str) -> Setting:
    return {field.name: field.metadata["setting"]
            for field in dataclasses.fields(ExperimentConfig)}[name]


def default_of(name: str) -> Any:
    return {field.name: field.default for field in dataclasses.fields(ExperimentConfig)}[name]


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    experiment: str = setting(dataclasses.MISSING, flag=False, row=True)
    model: str = setting("cnn", "Model (jaxcolor.models.MODELS).", run_name="{}", **DESCRIBES)
    task: str = setting("colourization", flag=False, run_name="{}", **DESCRIBES)
    loss: str = setting("cross_entropy", "Classification loss: plain or class-rebalanced "
                        "cross-entropy.", run_name="{}", **DESCRIBES)
    epochs: int = setting(25, "Training epochs.", hparam=True, row=True)
    batch_size: int = setting(100, "Training batch size.", run_name="bs{}", **DESCRIBES)
    learning_rate: float = setting(1e-3, "Adam learning rate.", run_name="lr{:g}", **DESCRIBES)
    num_filters: int = setting(32, "NF, the base channel count.", run_name="nf{}",
                               label="NF {}", **DESCRIBES)
    kernel: int = setting(3, "Convolution kernel size (odd).", run_name="k{}", label="kernel {}",
                          **DESCRIBES)
    conv_init: str = setting("pytorch", "Conv weight init: pytorch (torch default, the "
                             "reference's) or lecun.", **DESCRIBES)
    num_colours: int = setting(24, "k-means colour classes.", **DESCRIBES)
    seed: int = setting(0, "PRNG seed for initialisation and shuffling.", run_name="s{}",
                        label="seed {}", **DESCRIBES)
    lr_schedule: str = setting("constant", "constant: --learning_rate throughout (the "
                               "assignment's); cosine: decay it to 0 over the run (optax), after "
                               "--warmup_epochs of linear warm-up.", label="{}", **DESCRIBES)
    warmup_epochs: int = setting(0, "Epochs of linear warm-up from 0 (with "
                                 "--lr_schedule=cosine).", label="{}-epoch warm-up",
                                 **DESCRIBES)
    hflip: bool = setting(False, "Augment: mirror each training image (and its targets) "
                          "left-right with probability 1/2, drawn per step.", run_name="hflip",
                          named_at_default=False, label="hflip", **DESCRIBES)
    precision: str = setting("float32", "bfloat16: mixed precision, activations and "
                             "convolution inputs in bfloat16; parameters, optimizer state, "
                             "BatchNorm statistics, losses and metrics in float32.",
                             run_name="{}", named_at_default=False, label="{}",
                             choices=("float32", "bfloat16"), **DESCRIBES)
    # k-means seed: fixed, so that training seeds share one palette
    colour_seed: int = setting(0, flag=False)
    category: str = setting("horse", "Image category (CIFAR-10 class name), or 'all' for every "
                            "class.", label="category {}", **DESCRIBES)
    source: str = setting("", "Image source; default: folder when --image_dir is set, else "
                          "tfds.")
    image_dir: str | None = setting(None, "Image folder PATH/{train,test}/{class}/*.jpg|png of "
                                    "colour images (16-bit ones scaled to 8 bits, transparent "
                                    "pixels composited on white; default: $JAXCOLOR_IMAGE_DIR).")
    tfds_data_dir: str | None = setting(None, "TFDS data dir (default: tfds's own).")
    max_images: int = setting(0, "Use at most this many images per split (0 = all).")
    num_samples: int = setting(6, "Test images in sample grids.")
    # (Q, 2) .npy ab bins of lab_bins (None: the built-in bins); q7's own flag.
    ab_bins_file: str | None = setting(None, flag=False)
    temperature: float = setting(0.38, "Softmax temperature of the annealed-mean rendering of a "
                                 "classifier (Zhang et al.: 0.38).")
    output_dir: str = setting("", "Where results go (default: results/<script name>).")
    # Also report the state after these epochs of the same run (exactly equal to shorter runs).
    report_epochs: tuple[int, ...] = setting((), flag=False)
    checkpoint_every: int = setting(1, "Checkpoint every N epochs; 0: only the reported and last "
                                    "epochs (those always).")
    keep_checkpoints: int = setting(2, "Newest checkpoints kept per run (reported epochs are "
                                    "always kept).")
    resume: bool = setting(True, "Continue each run from its newest checkpoint (in "
                           "--checkpoint_dir); --noresume deletes them and starts afresh.")
    conv_impl: str = setting("auto", "How convolutions run: auto (the native CPU kernels where "
                             "they can: one CPU device, bfloat16 with AVX512_BF16; else XLA's), "
                             "xla (XLA's own, strided ones too), or native (an error where they "
                             "cannot). Same results within float rounding; each row records what "
                             "ran.")
    epoch_loop: str = setting("steps", "steps: one compiled call per batch; scan: each epoch as "
                              "one compiled lax.scan over its batches (same results; as fast "
                              "with the native CPU kernels, far slower on XLA:CPU's own "
                              "convolutions).")
    tensorboard: bool = setting(True, "Write TensorBoard event files to "
                                "<output_dir>/tensorboard/<run>/ (tensorboard --logdir "
                                "results/).")
    checkpoint_dir: str = setting("", "Checkpoints go to <this>/<run>/, a local folder or "
                                  "gs://bucket/path (preemptible cloud runs resume from it); "
                                  "default <output_dir>/checkpoints.")

    def replace(self, **changes) -> ExperimentConfig:
        """A copy with ``changes``, validated like every config."""
        return dataclasses.replace(self, **changes)

    def __post_init__(self) -> None:
        """Raise UserError naming the first bad value."""
        for field in dataclasses.fields(self):
            choices, value = field.metadata["setting"].choices, getattr(self, field.name)
            if choices is not None and value not in choices:
                raise UserError(f"--{field.name}={value!r} is unknown; use one of "
                                f"{', '.join(choices)}.")
        if not 0.0 < self.temperature <= 10.0:
            raise UserError(f"--temperature={self.temperature} must lie in (0, 10] (Zhang et "
                            f"al. use 0.38; 1 is the plain mean).")
        for name in ("epochs", "batch_size", "num_filters", "num_colours", "num_samples",
                     "keep_checkpoints"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name}={getattr(self, name)} must be a positive integer.")
        if self.num_colours < 2:
            raise UserError(f"--num_colours={self.num_colours} must be at least 2: with one colour "
                            f"class every pixel is that class, and there is nothing to learn.")
        if self.checkpoint_every < 0:
            raise UserError(f"--checkpoint_every={self.checkpoint_every} must be 0 (the last "
                            f"and reported epochs only) or a positive number of epochs.")
        if not self.learning_rate > 0:
            raise UserError(f"--learning_rate={self.learning_rate} must be positive.")
        if self.kernel <= 0 or self.kernel % 2 == 0:
            raise UserError(f"--kernel={self.kernel} must be a positive odd number "
                            f"('same' padding keeps the image size only for odd kernels).")
        if any(not 0 < e <= self.epochs for e in self.report_epochs):
            raise UserError(f"report epochs {list(self.report_epochs)} must lie in 1..--epochs="
                            f"{self.epochs}.")
        if self.warmup_epochs < 0 or (self.warmup_epochs and self.lr_schedule == "constant"):
            raise UserError(f"--warmup_epochs={self.warmup_epochs} must be 0, or positive with "
                            f"--lr_schedule=cosine.")
        if self.max_images < 0:
            raise UserError(f"--max_images={self.max_images} must be 0 (all) or positive.")
        if (self.category not in (*CIFAR10_CLASSES, ALL_CATEGORIES) and self.source != "folder"
                and not self.image_dir):
            raise UserError(f"--category={self.category!r} is unknown; use one of: "
                            f"{', '.join(CIFAR10_CLASSES)} or {ALL_CATEGORIES}.")
