"""The native CPU kernels (:mod:`jaxcolor.cpu.native`) as differentiable JAX functions: each
convolution's gradients (input, kernel, bias) are native kernels too, through ``custom_vjp``.
Reverse-mode autodiff only; :mod:`jaxcolor.models.layers` decides where they run."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxcolor.cpu import native


def swap_channels(kernel: jax.Array) -> jax.Array:
    """HWIO → HWOI: the kernel of the other direction (a convolution's input gradient is the
    transposed convolution with it, and the reverse)."""
    return kernel.transpose(0, 1, 3, 2)


def _like(kernel: jax.Array, grads: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
    """The kernel and bias gradients (float32 sums) in the dtype of the parameters they belong
    to (bfloat16 where the layer computes in it; the float32 parameters' gradients then come
    from the cast's own gradient)."""
    return tuple(grad.astype(kernel.dtype) for grad in grads)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array, padding: native.Padding
                   ) -> jax.Array:
    return native.conv(x, kernel, bias, padding)


def _conv2d_forward(x, kernel, bias, padding):
    return native.conv(x, kernel, bias, padding), (x, kernel)


def _conv2d_backward(padding, residual, grad):
    """Input gradient: the convolution of grad with the flipped kernel, in/out swapped, padded
    on the other sides; kernel and bias gradients: one native pass over x and grad."""
    x, kernel = residual
    height, width = kernel.shape[:2]
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
    grad_x = native.conv(grad, flipped, jnp.zeros(kernel.shape[2:3], grad.dtype),
                         (height - 1 - padding[0], width - 1 - padding[1]))
    return (grad_x, *_like(kernel, native.conv_weight_grad(x, grad, (height, width), padding)))


conv2d.defvjp(_conv2d_forward, _conv2d_backward)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def conv_stride2(x: jax.Array, kernel: jax.Array, bias: jax.Array,
                         padding: native.Padding) -> jax.Array:
    return native.conv(x, kernel, bias, padding, stride=2)


def _conv_stride2_forward(x, kernel, bias, padding):
    return native.conv(x, kernel, bias, padding, stride=2), (x, kernel)


def _conv_stride2_backward(padding, residual, grad):
    """Input gradient: the transposed convolution of grad (input pixel 2i − P + t received
    grad[i]·kernel[t]); kernel and bias gradients: one native pass reading x at stride 2."""
    x, kernel = residual
    grad_x = native.conv_transpose(grad, swap_channels(kernel),
                                   jnp.zeros(kernel.shape[2:3], grad.dtype), padding)
    return (grad_x, *_like(kernel, native.conv_weight_grad(x, grad, kernel.shape[:2], padding,
                                                           stride=2)))


conv_stride2.defvjp(_conv_stride2_forward, _conv_stride2_backward)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def conv_transpose2x(x: jax.Array, kernel: jax.Array, bias: jax.Array,
                             padding: native.Padding) -> jax.Array:
    return native.conv_transpose(x, kernel, bias, padding)


def _conv_transpose2x_forward(x, kernel, bias, padding):
    return native.conv_transpose(x, kernel, bias, padding), (x, kernel)


def _conv_transpose2x_backward(padding, residual, grad):
    """Input gradient: the stride-2 convolution of grad (input pixel i reached output pixels
    2i − P + t); kernel and bias gradients: the stride-2 weight gradient with x and grad swapped
    (Σ grad[2i − P + t] ⊗ x[i]) and grad's channel sums, in one native pass."""
    x, kernel = residual
    grad_x = native.conv(grad, swap_channels(kernel), jnp.zeros(kernel.shape[2:3], grad.dtype),
                         padding, stride=2)
    swapped, grad_bias = native.conv_weight_grad(grad, x, kernel.shape[:2], padding, stride=2,
                                                 sums_of_x=True)
    return (grad_x, *_like(kernel, (swap_channels(swapped), grad_bias)))


conv_transpose2x.defvjp(_conv_transpose2x_forward, _conv_transpose2x_backward)
