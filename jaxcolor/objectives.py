"""What a model is trained to minimise and measured by, per pixel.

Each objective maps (model outputs (N,H,W,C), targets) to a per-pixel loss (N,H,W) and a dict of
per-pixel metrics; the training loop averages them, so losses match PyTorch's ``reduction='mean'``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Objective(NamedTuple):
    """``loss`` and ``metrics`` take the targets as ``prepare`` returns them (None: as given).
    The training loop prepares each dataset's targets once, before its first step, so work that
    depends on the targets alone is not repeated every epoch."""

    name: str
    loss: Callable[[jax.Array, jax.Array], jax.Array]
    metrics: Callable[[jax.Array, jax.Array], dict[str, jax.Array]]
    prepare: Callable[[np.ndarray], np.ndarray] | None = None


def pixel_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy of every pixel's logits against its colour class:
    logsumexp(logits) − logits[label], optax's value up to float rounding (tested). The label's
    logit is picked by a one-hot select, whose gradient is elementwise and fuses with the
    softmax's; optax's take_along_axis scatters into a zero array in the backward pass instead
    (BENCHMARKS.md, "Where a step's time goes")."""
    picked = labels[..., None] == jnp.arange(logits.shape[-1])
    return (jax.nn.logsumexp(logits, axis=-1)
            - jnp.sum(jnp.where(picked, logits, 0.0), axis=-1))


def pixel_accuracy(logits: jax.Array, labels: jax.Array) -> dict[str, jax.Array]:
    """1.0 where the most likely colour class is the true one."""
    return {"accuracy": (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)}


def pixel_squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Squared error averaged over channels: its mean over pixels is PyTorch's MSELoss."""
    return jnp.mean((predictions - targets) ** 2, axis=-1)


CLASSIFICATION = Objective("classification", pixel_cross_entropy, pixel_accuracy)
REGRESSION = Objective("regression", pixel_squared_error, lambda outputs, targets: {})


def rebalancing_weights(labels: np.ndarray, num_classes: int, mix: float = 0.5) -> np.ndarray:
    """Per-class weights ∝ 1 / ((1 − mix)·p + mix/K), scaled so their expectation under the
    empirical class distribution p is 1 (Zhang, Isola & Efros 2016, with λ = ``mix``).

    Rare colours then weigh more, so the loss stops favouring the common desaturated ones."""
    frequency = np.bincount(np.asarray(labels).ravel(), minlength=num_classes).astype(np.float64)
    return weights_for_distribution(frequency / frequency.sum(), mix)


def weights_for_distribution(distribution: np.ndarray, mix: float = 0.5) -> np.ndarray:
    """Per-class weights ∝ 1 / ((1 − mix)·p + mix/K) for a class distribution p, scaled so that
    their expectation under p is 1."""
    weights = 1.0 / ((1.0 - mix) * distribution + mix / len(distribution))
    return (weights / np.sum(distribution * weights)).astype(np.float32)


def rebalanced_classification(class_weights: np.ndarray) -> Objective:
    """Cross-entropy weighted by the true class's rebalancing weight (its values are not on the
    plain cross-entropy's scale: compare runs by accuracy and image-quality metrics)."""
    weights = jnp.asarray(class_weights)

    def loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
        return weights[labels] * pixel_cross_entropy(logits, labels)

    return Objective("rebalanced", loss, pixel_accuracy)


LOSSES = ("cross_entropy", "rebalanced")
