"""The assignment's networks (both editions) and the exact layer rewrites they are built from.

:class:`ModelSpec` is the one description of a model (what a results row, a checkpoint and a
colorizer file record); :func:`build_model` is the one place a model is built from it.
"""

from __future__ import annotations

import dataclasses

from jaxcolor.errors import UserError
from jaxcolor.models.layers import (
    CONV_IMPLEMENTATIONS,
    CONV_INITS,
    conv_implementation,
    prepare_kernels,
)
from jaxcolor.models.networks import (
    CNN,
    MODELS,
    ColourNet,
    ConvTransposeNet,
    PoolUpsampleNet,
    RegressionCNN,
    UNet,
    UNetTranspose,
)

__all__ = ["CNN", "CONV_IMPLEMENTATIONS", "CONV_INITS", "MODELS", "ColourNet", "ConvTransposeNet",
           "ModelSpec", "PoolUpsampleNet", "RegressionCNN", "UNet", "UNetTranspose",
           "build_model", "conv_implementation", "prepare_kernels"]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything that fixes a model's architecture. ``head_features`` (the last block's
    width) and ``final_kernel``: 0 = the reference head (see :class:`CNN`)."""

    model: str
    num_filters: int
    kernel: int
    num_outputs: int
    conv_init: str = "pytorch"
    head_features: int = 0
    final_kernel: int = 0
    conv_impl: str = "auto"  # layers.CONV_IMPLEMENTATIONS: how the convolutions run


def build_model(spec: ModelSpec) -> ColourNet:
    """The flax module of ``spec`` (a UserError for an unknown model name)."""
    if spec.model not in MODELS:
        raise UserError(f"--model={spec.model!r} is unknown; use one of {', '.join(MODELS)}.")
    return MODELS[spec.model](num_filters=spec.num_filters, num_outputs=spec.num_outputs,
                              kernel=spec.kernel, conv_init=spec.conv_init,
                              head_features=spec.head_features, final_kernel=spec.final_kernel,
                              conv_impl=spec.conv_impl)
