"""The Task type: how images become a learning problem, and how its outputs become pictures.

A task owns everything that differs between the colourization variants: the model's input and
target arrays, the objective (plain or class-rebalanced), the output width and head, and the
rendering of outputs to RGB. Nothing outside ``jaxcolor.tasks`` branches on a task's name.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import ClassVar

import jax
import numpy as np

from jaxcolor.errors import UserError
from jaxcolor.objectives import Objective

# How a results row names its losses (``--loss``): every task takes the plain one; classifiers
# also take the class-rebalanced one.
LOSSES = ("cross_entropy", "rebalanced")


class Task(abc.ABC):
    """One task (a frozen dataclass in each subclass, ``eq=False``: tasks hold arrays, so a task
    is equal only to itself and hashes by identity, as a cache key of compiled programs). Inputs
    are float32 NHWC in [0, 1]."""

    name: ClassVar[str]
    # Whether the model outputs a per-pixel distribution (colour classes or ab bins): such
    # tasks take the rebalanced loss and are rendered at several softmax temperatures.
    classifies: ClassVar[bool]
    # The rendering whose image quality a results row reports in its flat keys.
    default_rendering: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def create(cls, palette: Callable[[], np.ndarray], ab_bins_file: str | None) -> Task:
        """The task from what it may need: ``palette()`` fits the k-means colour classes (only
        tasks that use them call it); ``ab_bins_file`` is ``--ab_bins_file``."""

    @property
    @abc.abstractmethod
    def num_outputs(self) -> int:
        """Per-pixel output width of the model."""

    @property
    @abc.abstractmethod
    def objective(self) -> Objective:
        """The plain per-pixel objective."""

    @abc.abstractmethod
    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 RGB (N,H,W,3) → the model's float32 inputs (N,H,W,C) and per-pixel targets."""

    @abc.abstractmethod
    def render(self, inputs: jax.Array, outputs: jax.Array, temperature: float | None
               ) -> jax.Array:
        """Model outputs for ``inputs`` → RGB in [0, 1] (N,H,W,3); a classifier's distribution
        decoded at ``temperature`` (the annealed mean: 0 = mode, 1 = mean). Traceable: it is
        compiled with the model's prediction."""

    @abc.abstractmethod
    def describe(self) -> str:
        """A few words for the log line, e.g. ``24 colours`` or ``CIE Lab, 261 ab bins``."""

    def rebalanced_objective(self, train_targets: np.ndarray) -> Objective:
        """The objective weighted by class rebalancing (λ = 0.5) from the training targets."""
        raise UserError(f"--loss=rebalanced needs a classification task, not {self.name}.")

    def objective_for(self, loss: str, train_targets: np.ndarray) -> Objective:
        """The objective of ``--loss`` (one of :data:`LOSSES`)."""
        return self.rebalanced_objective(train_targets) if loss == "rebalanced" else self.objective

    def head(self, num_filters: int) -> dict[str, int]:
        """``head_features``/``final_kernel`` of the model (:class:`jaxcolor.models.ModelSpec`);
        empty: the reference head."""
        del num_filters
        return {}

    def renderings(self, temperature: float) -> dict[str, float | None]:
        """Rendering name → temperature of every way this task's outputs are shown."""
        return {self.default_rendering: temperature}

    def fingerprint_arrays(self) -> list[np.ndarray]:
        """Arrays besides the training data that a checkpoint of this task depends on."""
        return []

    def truth_column(self, targets: np.ndarray) -> tuple[str, np.ndarray] | None:
        """A figure column showing ``targets`` as RGB, if that differs from the image itself
        (e.g. quantized to the palette)."""
        del targets
        return None


@dataclasses.dataclass(frozen=True)
class TaskData:
    """A task with its model-ready arrays, and the uint8 originals for figures and metrics."""

    task: Task
    train_inputs: np.ndarray
    train_targets: np.ndarray
    test_inputs: np.ndarray
    test_targets: np.ndarray
    train_images: np.ndarray
    test_images: np.ndarray

    @property
    def in_channels(self) -> int:
        return self.train_inputs.shape[-1]


def check_image_size(images: np.ndarray, what: str) -> None:
    height, width = images.shape[1:3]
    if height % 4 or width % 4:
        raise UserError(f"{what} images are {width}x{height}; the models pool twice by 2, so both "
                        f"sides must be multiples of 4.")


def make_task_data(task: Task, train_images: np.ndarray, test_images: np.ndarray) -> TaskData:
    """``task``'s arrays of the train and test images (uint8 RGB, sides multiples of 4)."""
    check_image_size(train_images, "train")
    check_image_size(test_images, "test")
    return TaskData(task, *task.encode(train_images), *task.encode(test_images), train_images,
                    test_images)
