"""The train state pytree and the per-epoch record of a run."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct


class TrainState(struct.PyTreeNode):
    """Everything that changes during training, as one pytree."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array


def create_train_state(model: nn.Module, tx: optax.GradientTransformation,
                       sample_input: jax.Array, key: jax.Array) -> TrainState:
    init_key, rng = jax.random.split(key)
    variables = jax.jit(partial(model.init, train=False))(init_key, sample_input)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                      rng=rng)


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float | None  # percent, for classification
    seconds: float  # train + validation wall time
    train_images_per_sec: float
    elapsed: float  # seconds since fit() started, data transfer and compilation included
