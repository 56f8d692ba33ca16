"""The Lab tasks (Zhang, Isola & Efros 2016): from CIE L predict ab, as a regression
(``lab_regression``) or as a distribution over the in-gamut ab bins (``lab_bins``) trained on
soft-encoded targets. Renderings keep the input's L and take ab from the model."""

from __future__ import annotations

import abc
import dataclasses
import functools
from collections.abc import Callable
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colour import lab, palette
from jaxcolor.colour.lab import sparse_soft_encode
from jaxcolor.objectives import Objective
from jaxcolor.tasks.base import Task, TaskData

# Lab regression predicts ab / AB_SCALE, so that its outputs and targets are of order 1.
AB_SCALE = 100.0
NEIGHBOURS = 5  # bins of each soft-encoded target (Zhang et al.)


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
    nearest.

    ``loss`` and ``metrics`` take the targets soft-encoded (``prepare``, once per dataset:
    :func:`packed_soft_encoding`): searching the bins in every step took most of its time
    (BENCHMARKS.md, "q7's Lab-bins step")."""
    weights_of_bins = None if class_weights is None else jnp.asarray(class_weights, jnp.float32)

    def loss(logits: jax.Array, packed: jax.Array) -> jax.Array:
        weights, indices = unpack_soft_encoding(packed)
        # The dense target, built elementwise: gathering the 5 log-probabilities instead
        # scatters into a zero (…, Q) array in the backward pass. Its rows sum to 1, so the
        # cross-entropy is logsumexp − Σ target · logits.
        bin_axis = jnp.arange(logits.shape[-1])
        target = sum(jnp.where(bin_axis == indices[..., k, None], weights[..., k, None], 0.0)
                     for k in range(indices.shape[-1]))
        cross_entropy = (jax.nn.logsumexp(logits, axis=-1)
                         - jnp.sum(target * logits, axis=-1))
        if weights_of_bins is None:
            return cross_entropy
        return weights_of_bins[indices[..., 0]] * cross_entropy

    def metrics(logits: jax.Array, packed: jax.Array) -> dict[str, jax.Array]:
        nearest = unpack_soft_encoding(packed)[1][..., 0]
        return {"accuracy": (jnp.argmax(logits, axis=-1) == nearest).astype(jnp.float32)}

    return Objective("lab_bins", loss, metrics,
                     prepare=functools.partial(packed_soft_encoding, bins=bins))


def packed_soft_encoding(ab: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """ab (..., 2) → (..., 10) float32: the weights of :func:`lab.sparse_soft_encode` on the 5
    nearest bins, then those bins' indices (as floats: exact below 2²⁴), nearest first."""
    distinct, inverse, _ = lab.distinct_ab(ab)
    packed = lab.map_in_chunks(functools.partial(_pack, bins=jnp.asarray(bins, jnp.float32)),
                               distinct)
    return packed[inverse].reshape(*np.shape(ab)[:-1], 2 * NEIGHBOURS)


def unpack_soft_encoding(packed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(..., 10) :func:`packed_soft_encoding` → (weights, int32 bin indices), each (..., 5)."""
    return packed[..., :NEIGHBOURS], packed[..., NEIGHBOURS:].astype(jnp.int32)


@jax.jit
def _pack(ab: jax.Array, bins: jax.Array) -> jax.Array:
    weights, indices = sparse_soft_encode(ab, bins, NEIGHBOURS)
    return jnp.concatenate([weights, indices.astype(jnp.float32)], axis=-1)


def ab_regression_objective() -> Objective:
    """Squared error of predicted ab / AB_SCALE (N, H, W, 2) against the ab targets, averaged
    over the two channels (Zhang et al.'s L2 baseline)."""

    def loss(outputs: jax.Array, ab: jax.Array) -> jax.Array:
        return jnp.mean((outputs - ab / AB_SCALE) ** 2, axis=-1)

    return Objective("lab_regression", loss, lambda outputs, ab: {})
