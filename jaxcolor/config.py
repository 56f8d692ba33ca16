"""The experiment configuration: one frozen dataclass that validates itself on every
construction and ``replace``.

It depends on nothing above it: names of models, tasks, losses and loops are checked against
their registries by :func:`jaxcolor.runner.preflight`, before any training.
"""

from __future__ import annotations

import dataclasses

from jaxcolor.data import ALL_CATEGORIES, CIFAR10_CLASSES
from jaxcolor.errors import UserError


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    experiment: str
    model: str = "cnn"
    task: str = "colourization"  # one of jaxcolor.tasks.TASKS
    loss: str = "cross_entropy"  # or "rebalanced" (classification tasks)
    epochs: int = 25
    batch_size: int = 100
    learning_rate: float = 1e-3
    num_filters: int = 32
    kernel: int = 3
    conv_init: str = "pytorch"  # conv weight init: "pytorch" (the reference's) or "lecun" (flax)
    num_colours: int = 24
    seed: int = 0
    hflip: bool = False  # random left–right mirroring of training images (augmentation)
    lr_schedule: str = "constant"  # or "cosine" (jaxcolor.training.LR_SCHEDULES)
    warmup_epochs: int = 0  # linear warm-up of the cosine schedule
    colour_seed: int = 0  # k-means seed: fixed, so that training seeds share one palette
    category: str = "horse"
    source: str = ""  # "" = folder when image_dir is given, else tfds
    image_dir: str | None = None
    tfds_data_dir: str | None = None
    max_images: int = 0  # per split; 0 = all
    num_samples: int = 6
    ab_bins_file: str | None = None  # (Q, 2) .npy ab bins of lab_bins (None: built-in bins)
    # Softmax temperature of the "annealed_mean" rendering of a classifier's distribution.
    temperature: float = 0.38
    output_dir: str = ""
    # Also report the state after these epochs of the same run (exactly equal to shorter runs).
    report_epochs: tuple[int, ...] = ()
    checkpoint_every: int = 1  # epochs between checkpoints, 0 = none between (reported and last
    # epochs always)
    keep_checkpoints: int = 2  # newest checkpoints kept per run (reported epochs always)
    resume: bool = True  # continue a run from its newest checkpoint in output_dir
    epoch_loop: str = "steps"  # "steps" (one compiled call per batch) or "scan" (per epoch)
    tensorboard: bool = True  # event files in output_dir/tensorboard/<run>/
    # Checkpoints in checkpoint_dir/<run>/ ("": output_dir/checkpoints), local or gs://.
    checkpoint_dir: str = ""

    def replace(self, **changes) -> ExperimentConfig:
        """A copy with ``changes``, validated like every config."""
        return dataclasses.replace(self, **changes)

    def __post_init__(self) -> None:
        """Raise UserError naming the first bad value."""
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
