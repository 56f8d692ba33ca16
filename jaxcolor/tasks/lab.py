"""The Lab tasks (Zhang, Isola & Efros 2016): from CIE L predict ab, as a regression
(``lab_regression``) or as a distribution over the in-gamut ab bins (``lab_bins``) trained on
soft-encoded targets. Renderings keep the input's L and take ab from the model."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colour import lab, palette
from jaxcolor.colour.lab import ab_cells, nearest_bins, sparse_soft_encode
from jaxcolor.objectives import Objective
from jaxcolor.tasks.base import Task, TaskData

# Lab regression predicts ab / AB_SCALE, so that its outputs and targets are of order 1.
AB_SCALE = 100.0


def lab_channels(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB (N,H,W,3) → the Lab tasks' input, float32 CIE L / 100 (N,H,W,1) in [0, 1], and
    target, CIE ab (N,H,W,2)."""
    lab_values = np.asarray(lab.rgb_to_lab(palette.to_unit_float(images)))
    return lab_values[..., :1] / 100.0, lab_values[..., 1:]


class LabTask(Task):
    """CIE L / 100 → ab. Subclasses say how outputs become ab (:meth:`ab`)."""

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return lab_channels(images)

    @classmethod
    @abc.abstractmethod
    def from_bins(cls, bins: np.ndarray | None) -> LabTask:
        """The task of a colorizer file, from the ab bins it stores (None: none)."""

    @property
    def ab_bins(self) -> np.ndarray | None:
        """The (Q, 2) ab bins the outputs are over, if any."""
        return None

    @abc.abstractmethod
    def ab(self, outputs: jax.Array, temperature: float | None) -> jax.Array:
        """Model outputs → ab (..., 2)."""

    def render(self, inputs: jax.Array, outputs: jax.Array, temperature: float | None
               ) -> jax.Array:
        return lab.compose_rgb(100.0 * inputs, self.ab(outputs, temperature))

    def describe(self) -> str:
        return "CIE Lab"


@dataclasses.dataclass(frozen=True, eq=False)
class LabRegression(LabTask):
    """L → ab / :data:`AB_SCALE` with MSE (Zhang et al.'s L2 baseline)."""

    name: ClassVar[str] = "lab_regression"
    classifies: ClassVar[bool] = False
    default_rendering: ClassVar[str] = "regression output"

    @classmethod
    def create(cls, palette: Callable[[], np.ndarray], ab_bins_file: str | None) -> Task:
        return cls()

    @classmethod
    def from_bins(cls, bins: np.ndarray | None) -> LabTask:
        return cls()

    @property
    def num_outputs(self) -> int:
        return 2

    @property
    def objective(self) -> Objective:
        return ab_regression_objective()

    def ab(self, outputs: jax.Array, temperature: float | None) -> jax.Array:
        return jnp.asarray(outputs) * AB_SCALE


@dataclasses.dataclass(frozen=True, eq=False)
class LabBins(LabTask):
    """L → a distribution over ab bins, trained on soft-encoded targets; decoded by the
    annealed mean. Its head is an NF-wide last block and a 1×1 classifier: the reference head
    (last block Q wide, k×k final conv) would cost ~Q²·k² multiply-adds per pixel."""

    bins: np.ndarray  # (Q, 2) ab bin centres
    from_file: bool = False  # bins read from --ab_bins_file (they enter checkpoint fingerprints)

    name: ClassVar[str] = "lab_bins"
    classifies: ClassVar[bool] = True
    default_rendering: ClassVar[str] = "annealed_mean"

    @classmethod
    def create(cls, palette: Callable[[], np.ndarray], ab_bins_file: str | None) -> Task:
        if ab_bins_file:
            return cls(lab.load_ab_bins(ab_bins_file), from_file=True)
        return cls(lab.ab_bins())

    @classmethod
    def from_bins(cls, bins: np.ndarray | None) -> LabTask:
        return cls(np.asarray(bins, np.float32))

    @property
    def ab_bins(self) -> np.ndarray | None:
        return self.bins

    @property
    def num_outputs(self) -> int:
        return len(self.bins)

    @property
    def objective(self) -> Objective:
        return soft_encoded_objective(self.bins)

    def rebalanced_objective(self, train_targets: np.ndarray) -> Objective:
        return soft_encoded_objective(self.bins, lab.rebalancing_weights(train_targets, self.bins))

    def head(self, num_filters: int) -> dict[str, int]:
        return {"head_features": num_filters, "final_kernel": 1}

    def renderings(self, temperature: float) -> dict[str, float | None]:
        return {**palette.RENDERING_TEMPERATURES, "annealed_mean": temperature}

    def ab(self, outputs: jax.Array, temperature: float | None) -> jax.Array:
        return lab.annealed_mean(outputs, self.bins, temperature)

    def describe(self) -> str:
        return f"CIE Lab, {len(self.bins)} ab bins"

    def fingerprint_arrays(self) -> list[np.ndarray]:
        return [self.bins] if self.from_file else []  # built-in bins: part of the code


def baselines(data: TaskData) -> dict[str, np.ndarray]:
    """RGB (N,H,W,3) renderings of a Lab task's test images that need no model: ``grey`` (their
    own L, a = b = 0) and ``mean colour`` (their own L with the training pixels' mean ab)."""
    lightness_100 = 100.0 * data.test_inputs
    mean_ab = data.train_targets.reshape(-1, 2).mean(axis=0)
    return {name: np.asarray(lab.compose_rgb(lightness_100, np.broadcast_to(
                ab, (*lightness_100.shape[:-1], 2)).astype(np.float32)))
            for name, ab in (("grey", np.zeros(2, np.float32)), ("mean colour", mean_ab))}


def soft_encoded_objective(bins: np.ndarray, class_weights: np.ndarray | None = None
                           ) -> Objective:
    """Zhang et al.'s per-pixel loss over (N, H, W, Q) bin logits and (N, H, W, 2) ab targets:
    cross-entropy against the soft-encoded target, times the rebalancing weight of the target's
    nearest bin (``class_weights``, e.g. :func:`jaxcolor.colour.lab.rebalancing_weights`;
    None = 1). Metric: ``accuracy``, the share of pixels whose most likely bin is the target's
    nearest."""
    bins = jnp.asarray(bins, jnp.float32)
    cell_weights = None if class_weights is None else _weights_by_cell(bins, class_weights)

    def loss(logits: jax.Array, ab: jax.Array) -> jax.Array:
        # The target has 5 non-zeros: gather their log-probabilities, no dense (…, Q) target.
        target, indices = sparse_soft_encode(ab, bins)
        log_probs = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), indices, axis=-1)
        cross_entropy = -jnp.sum(target * log_probs, axis=-1)
        if cell_weights is None:
            return cross_entropy
        # The nearest bin's weight, looked up by the ab's grid cell: indexing by the top_k
        # result instead makes XLA:CPU compute top_k again, a 7× slower train step (measured).
        return cell_weights[ab_cells(ab)] * cross_entropy

    def metrics(logits: jax.Array, ab: jax.Array) -> dict[str, jax.Array]:
        nearest = nearest_bins(ab, bins, 1)[1][..., 0]
        return {"accuracy": (jnp.argmax(logits, axis=-1) == nearest).astype(jnp.float32)}

    return Objective("lab_bins", loss, metrics)


def _weights_by_cell(bins: jax.Array, class_weights: np.ndarray) -> jax.Array:
    """(CELL_COUNT²,) table: for each grid cell, the weight of the bin nearest its centre. For
    grid-aligned bins this is the weight of the nearest bin of every ab in the cell."""
    cells = jnp.arange(lab.CELL_COUNT * lab.CELL_COUNT)
    centres = 10.0 * (jnp.stack([cells // lab.CELL_COUNT, cells % lab.CELL_COUNT], -1)
                       - lab.CELL_OFFSET)
    nearest = nearest_bins(centres.astype(jnp.float32), bins, 1)[1][:, 0]
    return jnp.asarray(class_weights, jnp.float32)[nearest]


def ab_regression_objective() -> Objective:
    """Squared error of predicted ab / AB_SCALE (N, H, W, 2) against the ab targets, averaged
    over the two channels (Zhang et al.'s L2 baseline)."""

    def loss(outputs: jax.Array, ab: jax.Array) -> jax.Array:
        return jnp.mean((outputs - ab / AB_SCALE) ** 2, axis=-1)

    return Objective("lab_regression", loss, lambda outputs, ab: {})
