"""What a model is trained to minimise and measured by, per pixel.

Each objective maps (model outputs (N,H,W,C), targets) to a per-pixel loss (N,H,W) and a dict of
per-pixel metrics; the training loop averages them, so losses match PyTorch's ``reduction='mean'``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class Objective(NamedTuple):
    name: str
    loss: Callable[[jax.Array, jax.Array], jax.Array]
    metrics: Callable[[jax.Array, jax.Array], dict[str, jax.Array]]


def pixel_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy of every pixel's logits against its colour class."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def pixel_accuracy(logits: jax.Array, labels: jax.Array) -> dict[str, jax.Array]:
    """1.0 where the most likely colour class is the true one."""
    return {"accuracy": (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)}


def pixel_squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Squared error averaged over channels: its mean over pixels is PyTorch's MSELoss."""
    return jnp.mean((predictions - targets) ** 2, axis=-1)


CLASSIFICATION = Objective("classification", pixel_cross_entropy, pixel_accuracy)
REGRESSION = Objective("regression", pixel_squared_error, lambda outputs, targets: {})
