"""Per-layer convolution timings of the CNN/UNet layers: forward, input and weight gradient.

Compares, for every 3×3 conv layer shape of the models at batch 100 (NHWC, SAME):
- ``xla default``: ``lax.conv_general_dilated`` compiled with XLA's default options (on CPU
  today: YNNPACK);
- ``xla + jaxcolor options``: the same compiled with ``jaxcolor.cpu.compiler.step_options()`` (on
  CPU: YNNPACK off, Eigen convolutions), what the train steps use;
- ``native kernels``: ``jaxcolor.cpu.native``'s kernels (what the models run on CPU when they
  are available; ``JAXCOLOR_NATIVE_ISA=avx2|avx512`` picks the variant): the convolution, the
  input gradient (the convolution with the flipped kernel) and the weight gradient, all in the
  NHWC layout;
- ``shifted matmuls``: the weight gradient as one (C_in × rows)·(rows × C_out) matmul per kernel
  offset over the flattened padded image, in a ``fori_loop`` (a custom-VJP candidate that was
  measured and not kept), compiled with the jaxcolor options.

The UNet's layers as it runs them (after ``layers.conv_of_upsampled``) are among ``LAYERS``:
(8, 32, 96) and (16, 24, 96) are the phase convolutions of its upsampled inputs.

    python benchmarks/conv_layers.py [--repeats=9]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from jax import lax

from jaxcolor.cpu import compiler, native
from jaxcolor.models import layers
from jaxcolor.timing import time_call

DIMENSIONS = ("NHWC", "HWIO", "NHWC")
# (spatial size, input channels, output channels) of the CNN and UNet convolutions.
LAYERS = [(32, 1, 32), (16, 32, 64), (8, 64, 64), (8, 64, 32), (16, 32, 24), (32, 24, 24),
          (8, 128, 32), (16, 64, 24), (32, 25, 24), (8, 32, 96), (16, 24, 96), (32, 1, 24)]


def conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=DIMENSIONS)


def shifted_matmul_weight_gradient(x: jax.Array, grad: jax.Array, k: int = 3) -> jax.Array:
    """∂/∂W of Σ grad·conv(x, W) for a k×k SAME convolution, one matmul per kernel offset."""
    n, h, w, c_in = x.shape
    pad, padded_w = k // 2, w + 2 * (k // 2)
    rows = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))).reshape(-1, c_in)
    grad_rows = jnp.pad(grad, ((0, 0), (0, 2 * pad), (0, 2 * pad), (0, 0))).reshape(
        -1, grad.shape[-1])
    length = rows.shape[0] - ((k - 1) * padded_w + k - 1)

    def offset(t, result):
        shifted = lax.dynamic_slice_in_dim(rows, (t // k) * padded_w + t % k, length)
        return result.at[t].set(shifted.T @ grad_rows[:length])

    result = lax.fori_loop(0, k * k, offset, jnp.zeros((k * k, c_in, grad.shape[-1])))
    return result.reshape(k, k, c_in, -1)


def milliseconds(function, *args, repeats: int) -> float:
    return 1e3 * time_call(function, *args, repeats=repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    options = compiler.step_options()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; jaxcolor options: {options}")
    print("| size | C_in→C_out | options | forward ms | input grad ms | weight grad ms |")
    print("|---|---|---|---|---|---|")
    for size, c_in, c_out in LAYERS:
        keys = jax.random.split(jax.random.key(0), 3)
        x = jax.random.normal(keys[0], (args.batch, size, size, c_in))
        kernel = jax.random.normal(keys[1], (3, 3, c_in, c_out)) * 0.1
        grad = jax.random.normal(keys[2], (args.batch, size, size, c_out))
        for label, opts in (("xla default", None), ("xla + jaxcolor options", options)):
            times = [milliseconds(jax.jit(f, compiler_options=opts), *inputs,
                                  repeats=args.repeats) for f, inputs in (
                (conv, (x, kernel)),
                (lambda x, w, g: jax.vjp(conv, x, w)[1](g)[0], (x, kernel, grad)),
                (lambda x, w, g: jax.vjp(conv, x, w)[1](g)[1], (x, kernel, grad)))]
            print(f"| {size} | {c_in}→{c_out} | {label} | " + " | ".join(
                f"{t:.1f}" for t in times) + " |", flush=True)
        if native.available():
            bias = jnp.zeros(c_out, jnp.float32)
            times = [milliseconds(jax.jit(f, compiler_options=options), *inputs,
                                  repeats=args.repeats) for f, inputs in (
                (native.conv, (x, kernel, bias)),
                (lambda x, w, b, g: jax.vjp(layers.conv2d, x, w, b)[1](g)[0],
                 (x, kernel, bias, grad)),
                (lambda x, g: native.conv_weight_grad(x, g, (3, 3), (1, 1)), (x, grad)))]
            print(f"| {size} | {c_in}→{c_out} | native kernels | " + " | ".join(
                f"{t:.1f}" for t in times) + " |", flush=True)
        shifted = milliseconds(jax.jit(shifted_matmul_weight_gradient, compiler_options=options),
                               x, grad, repeats=args.repeats)
        print(f"| {size} | {c_in}→{c_out} | shifted matmuls (weight grad only) | | | "
              f"{shifted:.1f} |", flush=True)


if __name__ == "__main__":
    main()
