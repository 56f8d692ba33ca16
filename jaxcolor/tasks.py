"""Turn uint8 images into (input, target) pairs for a task, plus what figures need to show them."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxcolor import colours
from jaxcolor.errors import UserError
from jaxcolor.objectives import CLASSIFICATION, REGRESSION, Objective


@dataclasses.dataclass(frozen=True)
class TaskData:
    """Model-ready arrays of one task. Inputs are float32 NHWC in [0, 1]."""

    task: str
    objective: Objective
    train_inputs: np.ndarray
    train_targets: np.ndarray
    test_inputs: np.ndarray
    test_targets: np.ndarray
    test_images: np.ndarray  # uint8 originals, for figures
    palette: np.ndarray  # (K, 3) colours in [0, 1]

    @property
    def num_outputs(self) -> int:
        return 3 if self.objective is REGRESSION else len(self.palette)

    @property
    def in_channels(self) -> int:
        return self.train_inputs.shape[-1]


def greyscale(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (N,H,W,3) → float32 grey (N,H,W,1) = mean of R, G, B, in [0, 1]."""
    return (images.astype(np.float32) / 255.0).mean(axis=-1, keepdims=True)


def colour_labels(images: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Nearest-palette-colour class (int32) of every pixel, computed in JAX."""
    return np.asarray(colours.nearest_colour(colours.to_unit_float(images), jnp.asarray(palette)))


def downsample4x(images: np.ndarray) -> np.ndarray:
    """uint8 (N,H,W,3) → float32 (N,H/4,W/4,3) in [0, 1]: two 2×2 average pools."""
    n, h, w, c = images.shape
    return (images.astype(np.float32) / 255.0).reshape(n, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))


def blurry_input(images: np.ndarray) -> np.ndarray:
    """The super-resolution input: pooled ×4 then upsampled ×2 twice (nearest) back to size."""
    return downsample4x(images).repeat(4, axis=1).repeat(4, axis=2)


def check_image_size(images: np.ndarray, what: str) -> None:
    height, width = images.shape[1:3]
    if height % 4 or width % 4:
        raise UserError(f"{what} images are {width}x{height}; the models pool twice by 2, so both "
                        f"sides must be multiples of 4.")


def make_task(task: str, train_images: np.ndarray, test_images: np.ndarray,
              palette: np.ndarray) -> TaskData:
    """Build a task's arrays.

    - ``colourization``: grey (1 channel) → colour class of every pixel;
    - ``regression``: grey → RGB;
    - ``superres``: blurry RGB (4× pooled, upsampled back) → colour class of the original.
    """
    check_image_size(train_images, "train")
    check_image_size(test_images, "test")
    if task not in TASKS:
        raise UserError(f"task {task!r} is unknown; use one of {', '.join(TASKS)}.")
    make_input = blurry_input if task == "superres" else greyscale
    if task == "regression":
        objective = REGRESSION
        train_targets = train_images.astype(np.float32) / 255.0
        test_targets = test_images.astype(np.float32) / 255.0
    else:
        objective = CLASSIFICATION
        train_targets = colour_labels(train_images, palette)
        test_targets = colour_labels(test_images, palette)
    return TaskData(task, objective, make_input(train_images), train_targets,
                    make_input(test_images), test_targets, test_images, palette)


TASKS = ("colourization", "regression", "superres")
