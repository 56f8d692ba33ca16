"""Turn uint8 images into (input, target) pairs for a task, plus what figures need to show them."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor import colours, lab
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
    palette: np.ndarray  # (K, 3) colours in [0, 1]; empty for the Lab tasks
    ab_bins: np.ndarray | None = None  # (Q, 2) bin centres of the lab_bins task
    train_images: np.ndarray | None = None  # uint8 originals (decoder calibration)

    @property
    def num_outputs(self) -> int:
        if self.task == "lab_regression":
            return 2
        if self.task == "lab_bins":
            return len(self.ab_bins)
        return 3 if self.objective is REGRESSION else len(self.palette)

    @property
    def classifies(self) -> bool:
        """Whether the model outputs a distribution (over palette colours or ab bins)."""
        return self.task in ("colourization", "superres", "lab_bins")

    @property
    def in_channels(self) -> int:
        return self.train_inputs.shape[-1]


def greyscale(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (N,H,W,3) → float32 grey (N,H,W,1) = mean of R, G, B, in [0, 1]."""
    return (images.astype(np.float32) / 255.0).mean(axis=-1, keepdims=True)


def lab_channels(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB (N,H,W,3) → the Lab tasks' input, float32 CIE L / 100 (N,H,W,1) in [0, 1], and
    target, CIE ab (N,H,W,2)."""
    lab_values = np.asarray(lab.rgb_to_lab(colours.to_unit_float(images)))
    return lab_values[..., :1] / 100.0, lab_values[..., 1:]


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
              palette: np.ndarray | None, ab_bins: np.ndarray | None = None) -> TaskData:
    """Build a task's arrays.

    - ``colourization``: grey (1 channel) → colour class of every pixel;
    - ``regression``: grey → RGB;
    - ``superres``: blurry RGB (4× pooled, upsampled back) → colour class of the original;
    - ``lab_regression``: CIE L → ab (the model predicts ab / :data:`lab.AB_SCALE`);
    - ``lab_bins``: CIE L → a distribution over the in-gamut ab bins (:func:`lab.ab_bins`),
      trained on soft-encoded ab targets (Zhang et al. 2016).

    ``palette`` (K, 3) is the colour classes of the RGB classification tasks (None for Lab);
    ``ab_bins`` (Q, 2) replaces :func:`lab.ab_bins` as the bins of ``lab_bins``.
    """
    check_image_size(train_images, "train")
    check_image_size(test_images, "test")
    if task not in TASKS:
        raise UserError(f"task {task!r} is unknown; use one of {', '.join(TASKS)}.")
    if task in LAB_TASKS:
        bins, objective = None, lab.ab_regression_objective()
        if task == "lab_bins":
            bins = lab.ab_bins() if ab_bins is None else np.asarray(ab_bins, np.float32)
            objective = lab.soft_encoded_objective(bins)
        return TaskData(task, objective, *lab_channels(train_images), *lab_channels(test_images),
                        test_images, np.zeros((0, 3), np.float32), bins, train_images)
    if palette is None:
        raise ValueError(f"task {task!r} needs a colour palette")
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
                    make_input(test_images), test_targets, test_images, palette,
                    train_images=train_images)


def render(task_data: TaskData, inputs: np.ndarray, outputs: jax.Array,
           temperature: float | None) -> np.ndarray:
    """Model outputs for ``inputs`` → RGB in [0, 1] (N,H,W,3).

    Classifiers decode their distribution at ``temperature`` (the annealed mean: 0 = most
    likely colour or bin, 1 = expected one); regression outputs are clipped to the gamut and
    ignore it. The Lab tasks keep the input's L and take ab from the model."""
    if task_data.task in LAB_TASKS:
        ab = predicted_ab(task_data.task, outputs, task_data.ab_bins, temperature)
        return np.asarray(lab.compose_rgb(100.0 * jnp.asarray(inputs), ab))
    if task_data.objective is REGRESSION:
        return np.clip(np.asarray(outputs), 0.0, 1.0)
    return np.asarray(colours.decode_colours(outputs, task_data.palette, temperature))


def predicted_ab(task: str, outputs: jax.Array, ab_bins: np.ndarray | None,
                 temperature: float | None) -> jax.Array:
    """A Lab task's model outputs → ab (..., 2): bin logits decoded by the annealed mean at
    ``temperature``, or the regression output rescaled."""
    if task == "lab_bins":
        return lab.annealed_mean(outputs, ab_bins, temperature)
    return jnp.asarray(outputs) * lab.AB_SCALE


def baselines(lab_task: TaskData) -> dict[str, np.ndarray]:
    """RGB (N,H,W,3) renderings of a Lab task's test images that need no model: ``grey`` (their
    own L, a = b = 0) and ``mean colour`` (their own L with the training pixels' mean ab)."""
    lightness_100 = 100.0 * lab_task.test_inputs
    mean_ab = lab_task.train_targets.reshape(-1, 2).mean(axis=0)
    return {name: np.asarray(lab.compose_rgb(lightness_100, np.broadcast_to(
                ab, (*lightness_100.shape[:-1], 2)).astype(np.float32)))
            for name, ab in (("grey", np.zeros(2, np.float32)), ("mean colour", mean_ab))}


LAB_TASKS = ("lab_regression", "lab_bins")
TASKS = ("colourization", "regression", "superres", *LAB_TASKS)
