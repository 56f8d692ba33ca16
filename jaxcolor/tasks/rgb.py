"""The assignment's RGB tasks: colour classes from grey (colourization), RGB from grey
(regression), and colour classes from a 4×-pooled image (super-resolution)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colour import palette as colours
from jaxcolor.objectives import (
    CLASSIFICATION,
    REGRESSION,
    Objective,
    rebalanced_classification,
    rebalancing_weights,
)
from jaxcolor.tasks.base import Task


def greyscale(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (N,H,W,3) → float32 grey (N,H,W,1) = mean of R, G, B, in [0, 1]."""
    return (images.astype(np.float32) / 255.0).mean(axis=-1, keepdims=True)


def colour_labels(images: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Nearest-palette-colour class (int32) of every pixel, computed in JAX."""
    return np.asarray(colours.nearest_colour(images, jnp.asarray(palette)))


def downsample4x(images: np.ndarray) -> np.ndarray:
    """uint8 (N,H,W,3) → float32 (N,H/4,W/4,3) in [0, 1]: two 2×2 average pools."""
    n, h, w, c = images.shape
    return (images.astype(np.float32) / 255.0).reshape(n, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))


def blurry_input(images: np.ndarray) -> np.ndarray:
    """The super-resolution input: pooled ×4 then upsampled ×2 twice (nearest) back to size."""
    return downsample4x(images).repeat(4, axis=1).repeat(4, axis=2)


@dataclasses.dataclass(frozen=True, eq=False)
class PaletteTask(Task):
    """A task over grey or RGB inputs that keeps the k-means colour classes."""

    palette: np.ndarray  # (K, 3) colours in [0, 1], the k-means colour classes

    @classmethod
    def create(cls, palette: Callable[[], np.ndarray], ab_bins_file: str | None) -> Task:
        return cls(palette())

    def describe(self) -> str:
        return f"{len(self.palette)} colours"

    def fingerprint_arrays(self) -> list[np.ndarray]:
        return [self.palette]


@dataclasses.dataclass(frozen=True, eq=False)
class Colourization(PaletteTask):
    """Grey (1 channel) → the class of each pixel's nearest palette colour."""

    name: ClassVar[str] = "colourization"
    classifies: ClassVar[bool] = True
    default_rendering: ClassVar[str] = "argmax"

    @property
    def num_outputs(self) -> int:
        return len(self.palette)

    @property
    def objective(self) -> Objective:
        return CLASSIFICATION

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return greyscale(images), colour_labels(images, self.palette)

    def rebalanced_objective(self, train_targets: np.ndarray) -> Objective:
        return rebalanced_classification(rebalancing_weights(train_targets, len(self.palette)))

    def render(self, inputs: jax.Array, outputs: jax.Array, temperature: float | None
               ) -> jax.Array:
        return colours.decode_colours(outputs, self.palette, temperature)

    def renderings(self, temperature: float) -> dict[str, float | None]:
        return {**colours.RENDERING_TEMPERATURES, "annealed_mean": temperature}

    def truth_column(self, targets: np.ndarray) -> tuple[str, np.ndarray] | None:
        return f"truth, {len(self.palette)} colours", self.palette[targets]


@dataclasses.dataclass(frozen=True, eq=False)
class SuperResolution(Colourization):
    """A blurry RGB image (4× pooled, upsampled back) → the original's colour classes."""

    name: ClassVar[str] = "superres"

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return blurry_input(images), colour_labels(images, self.palette)


@dataclasses.dataclass(frozen=True, eq=False)
class RGBRegression(PaletteTask):
    """Grey → RGB, trained with MSE; outputs are clipped to the gamut when rendered. Keeps the
    palette of the classification tasks for the analyses that compare with them."""

    name: ClassVar[str] = "regression"
    classifies: ClassVar[bool] = False
    default_rendering: ClassVar[str] = "regression output"

    @property
    def num_outputs(self) -> int:
        return 3

    @property
    def objective(self) -> Objective:
        return REGRESSION

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return greyscale(images), images.astype(np.float32) / 255.0

    def render(self, inputs: jax.Array, outputs: jax.Array, temperature: float | None
               ) -> jax.Array:
        return jnp.clip(outputs, 0.0, 1.0)
