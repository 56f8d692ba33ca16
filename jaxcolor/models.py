"""Flax (linen) models of the assignment: CNN, UNet, RegressionCNN.

Block order (documented choice): conv → MaxPool/Upsample → BatchNorm → ReLU, the order of the
reference U-Net, used for every model here. Nearest upsampling commutes exactly with BatchNorm
(every pixel is repeated 4 times, so the batch mean and variance are unchanged) and with ReLU,
so the up-blocks compute conv → BatchNorm → ReLU → Upsample: the same values with a quarter of
the pixels normalised (tested against the reference order); q6(b) measures the MaxPool/ReLU
swap. Every block's output is sown into the ``intermediates`` collection (for q5's activation
maps): ``model.apply(variables, x, train=False, mutable=["intermediates"])``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

Resample = Literal["down", "up", "none"]
# PyTorch BatchNorm2d defaults (momentum 0.1 ⇔ flax momentum 0.9), as in the reference code.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def upsample2x(x: jax.Array) -> jax.Array:
    """Nearest-neighbour ×2 upsampling of NHWC maps."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


@jax.custom_vjp
def maxpool2x(x: jax.Array) -> jax.Array:
    """2×2 max-pooling, stride 2, of NHWC maps (H and W even).

    Same values and gradients as ``nn.max_pool`` (the gradient goes to the first maximum of each
    window, tested with ties), but the backward pass is a one-hot of the window argmax instead
    of XLA's select-and-scatter, which XLA:CPU runs slowly (``benchmarks/maxpool_grad.py``).
    """
    return _pool_windows(x).max(axis=-1)


def _pool_windows(x: jax.Array) -> jax.Array:
    """(N, H, W, C) → (N, H/2, W/2, C, 4): each 2×2 window's values in row-major order."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(
        n, h // 2, w // 2, c, 4)


def _maxpool_forward(x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, tuple[int, ...]]]:
    windows = _pool_windows(x)
    return windows.max(axis=-1), (jnp.argmax(windows, axis=-1), x.shape)


def _maxpool_backward(residual, grad: jax.Array) -> tuple[jax.Array]:
    first_max, (n, h, w, c) = residual
    routed = jax.nn.one_hot(first_max, 4, dtype=grad.dtype) * grad[..., None]
    return (routed.reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(
        n, h, w, c),)


maxpool2x.defvjp(_maxpool_forward, _maxpool_backward)


# Convolution weight initialisers by flag name. "pytorch" is torch.nn.Conv2d's default
# (kaiming-uniform with a = √5, i.e. U(±1/√fan_in)), which the reference numbers were trained
# with; "lecun" is flax's default (normal, variance 1/fan_in: √3× larger weights).
CONV_INITS = {"pytorch": nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
              "lecun": nn.initializers.lecun_normal()}


class ConvBlock(nn.Module):
    """conv(k×k, SAME) → optional MaxPool 2 / Upsample ×2 → BatchNorm → ReLU."""

    features: int
    kernel: int
    resample: Resample = "none"
    conv_init: str = "pytorch"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = nn.Conv(self.features, (self.kernel, self.kernel), padding="SAME",
                    kernel_init=CONV_INITS[self.conv_init])(x)
        if self.resample == "down":
            x = maxpool2x(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                         epsilon=BN_EPSILON)(x)
        x = nn.relu(x)
        if self.resample == "up":  # after BatchNorm and ReLU: same values, ¼ of the pixels
            x = upsample2x(x)
        self.sow("intermediates", "activations", x)
        return x


class CNN(nn.Module):
    """Five conv blocks (down, down, same, up, up) and a final conv → per-pixel outputs.

    As in the reference, the last block is ``num_colours`` wide and the final conv is k×k. For
    hundreds of outputs (the Lab ab bins) that costs ~Q²·k² per pixel, so ``head_features``
    (the last block's width; 0 = ``num_colours``) and ``final_kernel`` (0 = ``kernel``) give a
    cheap head instead: e.g. NF wide and a 1×1 classifier, as in Zhang et al.'s network."""

    num_filters: int = 32
    num_colours: int = 24
    kernel: int = 3
    conv_init: str = "pytorch"
    head_features: int = 0
    final_kernel: int = 0
    skip_connections: ClassVar[bool] = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        nf, nc, k, init = self.num_filters, self.num_colours, self.kernel, self.conv_init

        def join(features: jax.Array, skip: jax.Array) -> jax.Array:
            if not self.skip_connections:
                return features
            return jnp.concatenate([features, skip], axis=-1)

        b1 = ConvBlock(nf, k, "down", init, name="block1")(x, train)
        b2 = ConvBlock(2 * nf, k, "down", init, name="block2")(b1, train)
        b3 = ConvBlock(2 * nf, k, "none", init, name="block3")(b2, train)
        b4 = ConvBlock(nf, k, "up", init, name="block4")(join(b3, b2), train)
        b5 = ConvBlock(self.head_features or nc, k, "up", init, name="block5")(join(b4, b1),
                                                                               train)
        final = self.final_kernel or k
        return nn.Conv(nc, (final, final), padding="SAME", kernel_init=CONV_INITS[init],
                       name="final")(join(b5, x))


class UNet(CNN):
    """The CNN with skip connections by channel concatenation (block3‖2, block4‖1, block5‖input)."""

    skip_connections: ClassVar[bool] = True


class RegressionCNN(CNN):
    """The CNN predicting RGB directly (3 outputs, no squashing), trained with MSE."""

    num_colours: int = 3


MODELS: dict[str, type[nn.Module]] = {"cnn": CNN, "unet": UNet, "regression_cnn": RegressionCNN}


def build_model(name: str, *, num_filters: int, kernel: int, num_outputs: int,
                conv_init: str = "pytorch", head_features: int = 0, final_kernel: int = 0
                ) -> nn.Module:
    """Instantiate a model by its flag name (``head_features``, ``final_kernel``: see CNN)."""
    return MODELS[name](num_filters=num_filters, num_colours=num_outputs, kernel=kernel,
                        conv_init=conv_init, head_features=head_features,
                        final_kernel=final_kernel)
