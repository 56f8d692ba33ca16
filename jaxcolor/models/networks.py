"""Flax (linen) models of the assignment: CNN, UNet, RegressionCNN, and the newer edition's
PoolUpsampleNet, ConvTransposeNet and its UNet (``unet_transpose``).

Block order (documented choice): conv → MaxPool/Upsample → BatchNorm → ReLU, the order of the
reference U-Net, used for every model here. The layers (``jaxcolor.models.layers``) and two exact
rewrites make it cheaper; ``tests/models/test_networks.py`` checks the whole network against the
reference computation (parameters, outputs, batch statistics, gradients):
- Nearest upsampling commutes with BatchNorm (every pixel is repeated 4 times, so the batch
  mean and variance are unchanged) and with ReLU, so the up-blocks compute conv → BatchNorm →
  ReLU and leave the upsampling to the next layer: a quarter of the pixels normalised.
- A k×k convolution of a nearest-upsampled map is computed at the map's own resolution
  (``layers.conv_of_upsampled``): the upsampled activations are never built, and XLA:CPU runs
  the resulting convolution (4× the output channels on ¼ of the pixels) faster; the UNet's
  skip concatenations become sums of convolutions (``layers.Conv``).
q6(b) measures the MaxPool/ReLU swap. Every block's output (upsampled, for the up-blocks) is
sown into the ``intermediates`` collection (for q5's activation maps):
``model.apply(variables, x, train=False, mutable=["intermediates"])``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.layers import (
    CONV_INITS,
    BatchNorm,
    Conv,
    Parts,
    compute_dtype,
    conv_stride2,
    conv_transpose2x,
    maxpool2x,
    transposed_init,
    upsample2x,
)

Resample = Literal["down", "up", "none"]
# PyTorch BatchNorm2d defaults (momentum 0.1 ⇔ flax momentum 0.9), as in the reference code.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


class ConvBlock(nn.Module):
    """conv(k×k, SAME) → optional MaxPool 2 / Upsample ×2 → BatchNorm → ReLU.

    An up-block returns its output *before* the upsampling (the next layer takes it as a
    half-resolution part, see :class:`Conv`); it sows the upsampled activations."""

    features: int
    kernel: int
    resample: Resample = "none"
    conv_init: str = "pytorch"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, parts: Parts, train: bool) -> jax.Array:
        x = Conv(self.features, self.kernel, self.conv_init, self.conv_impl, name="Conv_0")(parts)
        if self.resample == "down":
            x = maxpool2x(x)
        x = BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                      impl=self.conv_impl, name="BatchNorm_0")(x)
        x = nn.relu(x)  # for up-blocks: before upsampling, same values on ¼ of the pixels
        self.sow("intermediates", "activations", upsample2x(x) if self.resample == "up" else x)
        return x


class ColourNet(nn.Module):
    """The settings every net here shares (what :class:`~jaxcolor.models.ModelSpec` fixes).

    ``num_outputs`` is the per-pixel output width (the colour classes, 3 for RGB, 2 for ab, or
    the ab bins). As in the reference, the last block is ``num_outputs`` wide and the final conv
    is k×k. For hundreds of outputs (the Lab ab bins) that costs ~Q²·k² per pixel, so
    ``head_features`` (the last block's width; 0 = ``num_outputs``) and ``final_kernel``
    (0 = ``kernel``) give a cheap head instead: e.g. NF wide and a 1×1 classifier, as in Zhang
    et al.'s network. ``skip_connections``: the U-Net variant of a net. ``conv_impl``: how the
    convolutions run (:data:`~jaxcolor.models.layers.CONV_IMPLEMENTATIONS`)."""

    num_filters: int = 32
    num_outputs: int = 24
    kernel: int = 3
    conv_init: str = "pytorch"
    head_features: int = 0
    final_kernel: int = 0
    conv_impl: str = "auto"
    skip_connections: ClassVar[bool] = False


class CNN(ColourNet):
    """Five conv blocks (down, down, same, up, up) and a final conv → per-pixel outputs."""

    middle_block: ClassVar[bool] = True

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        nf, nc, k, init = self.num_filters, self.num_outputs, self.kernel, self.conv_init

        def join(features: jax.Array, upsampled: bool, skip: jax.Array) -> Parts:
            """The next layer's input parts: features (‖ skip, in the UNet)."""
            return [(features, upsampled)] + [(skip, False)] * self.skip_connections

        impl = self.conv_impl
        b1 = ConvBlock(nf, k, "down", init, impl, name="block1")([(x, False)], train)
        b2 = ConvBlock(2 * nf, k, "down", init, impl, name="block2")([(b1, False)], train)
        b3 = (ConvBlock(2 * nf, k, "none", init, impl, name="block3")([(b2, False)], train)
              if self.middle_block else b2)
        b4 = ConvBlock(nf, k, "up", init, impl, name="block4")(join(b3, False, b2), train)
        b5 = ConvBlock(self.head_features or nc, k, "up", init, impl, name="block5")(
            join(b4, True, b1), train)
        return Conv(nc, self.final_kernel or k, init, impl, name="final")(join(b5, True, x))


class UNet(CNN):
    """The CNN with skip connections by channel concatenation (block3‖2, block4‖1, block5‖input)."""

    skip_connections: ClassVar[bool] = True


class RegressionCNN(CNN):
    """The CNN predicting RGB directly (3 outputs, no squashing), trained with MSE."""

    num_outputs: int = 3


class PoolUpsampleNet(CNN):
    """The newer edition's CNN: the same blocks without the middle one (down, down, up, up)."""

    middle_block: ClassVar[bool] = False


class StridedBlock(nn.Module):
    """A stride-2 convolution ("down") or transposed convolution ("up") with PyTorch's
    padding for the kernel (:func:`~jaxcolor.models.layers.stride2_padding`) → BatchNorm →
    ReLU. The block holds the convolution's ``kernel`` and ``bias``; the transposed kernel is
    (k, k, in, out), PyTorch's (in, out, k, k) weight transposed, initialised as PyTorch does."""

    features: int
    kernel: int
    resample: Literal["down", "up"]
    conv_init: str = "pytorch"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        shape = (self.kernel, self.kernel, x.shape[-1], self.features)
        up = self.resample == "up"
        init = transposed_init(self.conv_init) if up else CONV_INITS[self.conv_init]
        kernel = self.param("kernel", init, shape)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        kernel, bias = compute_dtype(x, kernel, bias)
        x = (conv_transpose2x if up else conv_stride2)(x, kernel, bias, self.conv_impl)
        x = BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                      impl=self.conv_impl, name="BatchNorm_0")(x)
        x = nn.relu(x)
        self.sow("intermediates", "activations", x)
        return x


class ConvTransposeNet(ColourNet):
    """The newer edition's net: two stride-2 convolutions down (NF, 2NF), two stride-2
    transposed convolutions up (NF, then ``num_outputs``), each followed by BatchNorm and ReLU,
    and a final k×k convolution."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        nf, nc, k, init = self.num_filters, self.num_outputs, self.kernel, self.conv_init
        skip, impl = self.skip_connections, self.conv_impl
        b1 = StridedBlock(nf, k, "down", init, impl, name="block1")(x, train)
        b2 = StridedBlock(2 * nf, k, "down", init, impl, name="block2")(b1, train)
        b3 = StridedBlock(nf, k, "up", init, impl, name="block3")(b2, train)
        b4 = StridedBlock(self.head_features or nc, k, "up", init, impl, name="block4")(
            jnp.concatenate([b3, b1], axis=-1) if skip else b3, train)
        return Conv(nc, self.final_kernel or k, init, impl, name="final")(
            [(b4, False)] + [(x, False)] * skip)


class UNetTranspose(ConvTransposeNet):
    """The newer edition's UNet: :class:`ConvTransposeNet` whose second transposed convolution
    takes block 3 ‖ block 1 and whose final convolution takes block 4 ‖ the input."""

    skip_connections: ClassVar[bool] = True


MODELS: dict[str, type[ColourNet]] = {
    "cnn": CNN, "unet": UNet, "regression_cnn": RegressionCNN,
    "pool_upsample": PoolUpsampleNet, "conv_transpose": ConvTransposeNet,
    "unet_transpose": UNetTranspose}
