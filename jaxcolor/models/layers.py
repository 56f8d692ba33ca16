"""Layers of the models, each the standard layer's maths in a form XLA:CPU runs faster.

Every function here computes exactly what its textbook counterpart computes (up to float
rounding; each is tested against it, values and gradients), so checkpoints, initial values and
results do not depend on which form ran. Measured in ``benchmarks/`` (BENCHMARKS.md):
- :func:`conv_of_upsampled`: a convolution of a nearest-upsampled map, at the map's resolution;
- :func:`maxpool2x`: max-pooling whose backward pass avoids XLA's select-and-scatter;
- :class:`BatchNorm`: flax's BatchNorm (training statistics, running averages, parameters)
  with a fused backward pass and, on CPU, per-channel sums as matrix products;
- :func:`conv2d`: on CPU, native convolution kernels that need no layout changes;
- :func:`conv_stride2`, :func:`conv_transpose2x`: PyTorch's stride-2 convolution and
  transposed convolution, on CPU as one exact stride-1 convolution per pixel phase.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcolor.cpu import native, native_ops
from jaxcolor.errors import UserError

# Convolution weight initialisers by flag name. "pytorch" is torch.nn.Conv2d's default
# (kaiming-uniform with a = √5, i.e. U(±1/√fan_in)), which the reference numbers were trained
# with; "lecun" is flax's default (normal, variance 1/fan_in: √3× larger weights).
CONV_INITS = {"pytorch": nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
              "lecun": nn.initializers.lecun_normal()}


def transposed_init(name: str) -> nn.initializers.Initializer:
    """The initialiser ``name`` of a transposed convolution's (k, k, in, out) kernel. PyTorch's
    ConvTranspose2d takes its fan-in from its weight's second axis, the *output* channels."""
    if name == "pytorch":
        return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform", in_axis=-1,
                                                out_axis=-2)
    return CONV_INITS[name]


def upsample2x(x: jax.Array) -> jax.Array:
    """Nearest-neighbour ×2 upsampling of NHWC maps."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


@jax.custom_vjp
def maxpool2x(x: jax.Array) -> jax.Array:
    """2×2 max-pooling, stride 2, of NHWC maps (H and W even).

    Same values and gradients as ``nn.max_pool`` (the gradient goes to the first maximum of each
    window, tested with ties), but the backward pass is a one-hot of the window argmax instead
    of XLA's select-and-scatter, which XLA:CPU runs slowly, and the forward pass of a training
    step finds max and argmax in one reduce (``benchmarks/maxpool_grad.py``). Without a
    gradient (evaluation, inference) the max is taken elementwise over the 4 window positions
    of the untransposed map, which XLA:CPU runs faster than any reduce over the windows.
    """
    grid = _window_grid(x)
    return jnp.maximum(jnp.maximum(grid[:, :, 0, :, 0], grid[:, :, 0, :, 1]),
                       jnp.maximum(grid[:, :, 1, :, 0], grid[:, :, 1, :, 1])).astype(x.dtype)


def _window_grid(x: jax.Array) -> jax.Array:
    """(N, H, W, C) → (N, H/2, 2, W/2, 2, C), a reshape: each 2×2 window's rows on axis 2 and
    columns on axis 4, in float32 (exact: XLA:CPU compares bfloat16 windows far slower;
    BENCHMARKS.md, "Mixed precision (bfloat16) train steps")."""
    n, h, w, c = x.shape
    return x.astype(jnp.float32).reshape(n, h // 2, 2, w // 2, 2, c)


def _pool_windows(x: jax.Array) -> jax.Array:
    """(N, H, W, C) → (N, H/2, W/2, C, 4): each 2×2 window's values in row-major order, in
    float32 (:func:`_window_grid`)."""
    n, h, w, c = x.shape
    return _window_grid(x).transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)


def _max_and_first_argmax(windows: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Max and index of the first max over the last axis in one pass (one variadic reduce:
    ``max`` and ``argmax`` separately read the windows twice). NaN counts as the maximum,
    as in ``jnp.argmax``."""
    index = lax.broadcasted_iota(jnp.int32, windows.shape, windows.ndim - 1)

    def first_max(a, b):
        (a_value, a_index), (b_value, b_index) = a, b
        a_nan, b_nan = jnp.isnan(a_value), jnp.isnan(b_value)
        earlier = a_index < b_index
        take_a = ((a_nan & (~b_nan | earlier))
                  | (~b_nan & ((a_value > b_value) | ((a_value == b_value) & earlier))))
        return jnp.where(take_a, a_value, b_value), jnp.where(take_a, a_index, b_index)

    start = (jnp.array(-jnp.inf, windows.dtype), jnp.array(0, jnp.int32))
    return lax.reduce((windows, index), start, first_max, (windows.ndim - 1,))


def _maxpool_forward(x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, tuple[int, ...]]]:
    maxima, first = _max_and_first_argmax(_pool_windows(x))
    return maxima.astype(x.dtype), (first, x.shape)


def _maxpool_backward(residual, grad: jax.Array) -> tuple[jax.Array]:
    first_max, (n, h, w, c) = residual
    routed = jax.nn.one_hot(first_max, 4, dtype=grad.dtype) * grad[..., None]
    return (routed.reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(
        n, h, w, c),)


maxpool2x.defvjp(_maxpool_forward, _maxpool_backward)


def conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None,
           padding: native.Padding | None = None, impl: str = "auto") -> jax.Array:
    """Stride-1 convolution of NHWC maps with an HWIO kernel that keeps the image size, plus
    ``bias`` if given (``nn.Conv``'s): zero ``padding`` rows above and columns left of each
    image (the rest below and right), by default SAME's.

    On a single CPU device with the native kernels (:mod:`jaxcolor.cpu.native`, float32) the
    convolution and its gradients (input, kernel, bias) run as native kernels: same values and
    gradients (tested), no batch-minor transposes for the weight gradient, no separate passes
    for the bias. Elsewhere XLA's. ``impl`` (:data:`CONV_IMPLEMENTATIONS`) chooses: ``auto``
    as said, ``xla`` always XLA's, ``native`` the native kernels or a UserError saying why
    they cannot run. The native form supports reverse-mode autodiff only (no ``jax.jvp``)."""
    padding = padding or native.centred(kernel.shape[:2])
    if _use_native(x, kernel, impl):
        return native_ops.conv2d(x, kernel, jnp.zeros(kernel.shape[-1:], x.dtype)
                              if bias is None else bias, padding)
    y = _xla_conv2d(x, kernel, padding)
    return y if bias is None else y + bias


def prepare_kernels() -> None:
    """Start building the native CPU kernels :func:`conv2d` uses (where it uses them) in the
    background, so that a cold start's first compile does not wait for the C++ compiler."""
    native.build_in_background()


def _xla_conv2d(x: jax.Array, kernel: jax.Array, padding: native.Padding | None = None
                ) -> jax.Array:
    (top, left), (height, width) = padding or native.centred(kernel.shape[:2]), kernel.shape[:2]
    return lax.conv_general_dilated(x, kernel, (1, 1),
                                    [(top, height - 1 - top), (left, width - 1 - left)],
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


# How convolutions (and BatchNorm's sums) run: "auto" (the native CPU kernels where they can,
# else XLA's, with the stride-2 layers as phase forms on CPU), "xla" (XLA's own ops: stride-2
# ones too) or "native" (or a UserError saying why not).
CONV_IMPLEMENTATIONS = ("auto", "xla", "native")


def _use_native(x: jax.Array, kernel: jax.Array, impl: str) -> bool:
    """Whether ``impl`` runs this convolution natively: on a single CPU device (the
    native kernel has no sharding rule, so under a multi-device mesh XLA would gather whole
    batches onto every device) with the kernels built."""
    if impl == "xla":
        return False
    if impl not in CONV_IMPLEMENTATIONS:
        raise UserError(f"--conv_impl={impl!r} is unknown; use one of "
                        f"{', '.join(CONV_IMPLEMENTATIONS)}.")
    possible = (x.dtype == kernel.dtype and jax.default_backend() == "cpu"
                and jax.device_count() == 1)
    if impl == "native" and not (possible and native.runs(x.dtype)):
        raise UserError(f"--conv_impl=native: the native CPU kernels run on one CPU device, "
                        f"with AVX2 or AVX-512 (bfloat16: AVX512_BF16) and a C++ compiler "
                        f"(JAXCOLOR_NATIVE not 0); not here for {jnp.dtype(x.dtype).name}. Use "
                        f"--conv_impl=auto or xla.")
    return possible and native.runs(x.dtype)


def conv_implementation(impl: str = "auto", precision: str = "float32") -> str:
    """What ``impl`` resolves to for models computing in ``precision`` on this machine:
    ``native-<isa>`` or ``xla`` (recorded in every results row)."""
    probe = jnp.zeros((1, 1, 1, 1), precision)
    return f"native-{native.isa()}" if _use_native(probe, probe, impl) else "xla"


def _tap_matrix(size: int, offset: Callable[[int, int], int | None], parity: int,
                span: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """(rows, ``size``) 0/1 matrix of one phase (row parity) of a phase decomposition: row j
    holds the taps of the original kernel that read offset low + j at half resolution
    (``offset(parity, t)``, None where tap t does not touch the phase). Offsets span ``span``,
    by default the taps' own range widened to include 0 (so a convolution keeps the size).
    Returns the matrix and low."""
    placed = {t: offset(parity, t) for t in range(size)}
    placed = {t: d for t, d in placed.items() if d is not None}
    low, high = span or (min([0, *placed.values()]), max([0, *placed.values()]))
    taps = np.zeros((high - low + 1, size), np.float32)
    for t, d in placed.items():
        taps[d - low, t] = 1.0
    return taps, low


def _upsampled_offset(size: int) -> Callable[[int, int], int]:
    """Tap t of output row 2i+p over an upsampled map reads upsampled row 2i+p+t−r, which is
    half-resolution row i + ⌊(p+t−r)/2⌋; zero padding corresponds at both resolutions."""
    r = size // 2
    return lambda parity, t: (parity + t - r) // 2


def _transposed_offset(size: int) -> Callable[[int, int], int | None]:
    """Input row i adds x[i]·W[t] to output row 2i − P + t (P = :func:`stride2_padding`): to
    output row 2u+q from input row u + (q + P − t)/2 where that is whole."""
    padding = stride2_padding(size)[0]
    return lambda parity, t: (None if (parity + padding - t) % 2
                              else (parity + padding - t) // 2)


def _strided_offset(size: int) -> Callable[[int, int], int | None]:
    """Output row i reads input row 2i + t − P, which is row i + (t − P − s)/2 of the input's
    row-parity-s phase where that is whole."""
    padding = stride2_padding(size)[0]
    return lambda parity, t: None if (t - padding - parity) % 2 else (t - padding - parity) // 2


def _depth_to_space(phases: jax.Array) -> jax.Array:
    """(N, H, W, 4·C) with channels (row parity, column parity, C) → (N, 2H, 2W, C)."""
    n, h, w, c4 = phases.shape
    c = c4 // 4
    return phases.reshape(n, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(
        n, 2 * h, 2 * w, c)


def conv_of_upsampled(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None,
                      impl: str = "auto") -> jax.Array:
    """``conv2d(upsample2x(x), kernel, bias)``, computed at x's resolution.

    Each of the 4 output pixel phases (row, column parity) of a convolution over a nearest-
    upsampled map is a convolution of the half-resolution map with summed taps; the 4 phase
    kernels are stacked along the output channels (a K×K kernel, K = 3 for k = 3 and 5) and the
    result is interleaved back (depth to space). Same values up to float rounding (tested).
    """
    size = kernel.shape[0]
    if size == 1:
        return upsample2x(conv2d(x, kernel, bias, impl=impl))
    if size % 2 == 0:  # SAME padding is asymmetric for even kernels: no phase form here
        return conv2d(upsample2x(x), kernel, bias, impl=impl)
    _, _, in_channels, out_channels = kernel.shape
    half = (size // 2 + 1) // 2  # every phase within offsets ±half
    t = jnp.asarray(np.stack([_tap_matrix(size, _upsampled_offset(size), parity, (-half, half))[0]
                              for parity in range(2)]), kernel.dtype)
    phase_kernel = jnp.einsum("pak,qbl,klio->abipqo", t, t, kernel).reshape(
        2 * half + 1, 2 * half + 1, in_channels, 4 * out_channels)
    phase_bias = None if bias is None else jnp.tile(bias, 4)  # each phase's channels
    return _depth_to_space(conv2d(x, phase_kernel, phase_bias, impl=impl))


def stride2_padding(size: int) -> tuple[int, int]:
    """(padding, output_padding) of a ``size``×``size`` stride-2 convolution and transposed
    convolution that halve and double even image sizes exactly (PyTorch's arguments): a
    convolution's output is ⌊(H + 2P − k)/2⌋ + 1 = H/2 for P = ⌊(k−1)/2⌋, and a transposed
    convolution's (H − 1)·2 − 2P + k + output_padding = 2H for output_padding = k mod 2."""
    return (size - 1) // 2, size % 2


def _phase_forms(impl: str) -> bool:
    """Whether the stride-2 layers, where the native kernels are not used, run as phase
    decompositions onto :func:`conv2d`: with ``impl="auto"`` on CPU, sparing XLA:CPU's strided
    weight gradient; with ``"xla"`` and elsewhere XLA's own strided convolutions."""
    return impl != "xla" and jax.default_backend() == "cpu"


def _phase_kernel(kernel: jax.Array, offset: Callable[[int, int], int | None],
                  parities: tuple[int, int]) -> tuple[jax.Array, native.Padding]:
    """The stride-1 kernel of one phase (row, column parity) and its padding: exactly the taps
    of ``kernel`` that touch the phase, ordered by their offset (``offset(parity, tap)`` rows
    at half resolution), the range widened to include offset 0 so the output keeps its size."""
    (rows, top), (columns, left) = (_tap_matrix(kernel.shape[0], offset, parity)
                                    for parity in parities)
    return (jnp.einsum("ak,bl,klio->abio", jnp.asarray(rows, kernel.dtype),
                       jnp.asarray(columns, kernel.dtype), kernel), (-top, -left))


PARITIES = ((0, 0), (0, 1), (1, 0), (1, 1))


def conv_stride2(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None,
                 impl: str = "auto") -> jax.Array:
    """PyTorch's ``Conv2d(stride=2, padding=(k−1)//2)`` of NHWC maps with an HWIO kernel:
    (N, H, W, ·) → (N, H/2, W/2, ·) for even H and W.

    With the native CPU kernels (where :func:`conv2d` uses them): one strided native
    convolution, its gradients native too (:func:`jaxcolor.cpu.native_ops.conv_stride2`).
    Elsewhere on CPU with ``impl="auto"``: the
    sum over the 4 input pixel phases (every other row and column) of stride-1 convolutions
    with the taps that read each phase (1×1, 1×2, 2×1 and 2×2 for k = 3: no multiplication by a
    structural zero), which spares XLA:CPU's strided weight gradient. Same values up to float
    rounding (tested against XLA's)."""
    n, h, w, _ = x.shape
    padding = stride2_padding(kernel.shape[0])[0]
    if h % 2 == 0 and w % 2 == 0 and _use_native(x, kernel, impl):
        return native_ops.conv_stride2(x, kernel, _bias_or_zeros(bias, kernel), (padding, padding))
    if not _phase_forms(impl) or h % 2 or w % 2:
        y = lax.conv_general_dilated(x, kernel, (2, 2), [(padding, padding)] * 2,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y if bias is None else y + bias
    offset, terms = _strided_offset(kernel.shape[0]), []
    for row, column in PARITIES:  # the bias goes to the first term only
        phase_kernel, padding = _phase_kernel(kernel, offset, (row, column))
        terms.append(conv2d(x[:, row::2, column::2], phase_kernel, None if terms else bias,
                            padding, impl))
    return sum(terms[1:], terms[0])


def conv_transpose2x(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None,
                     impl: str = "auto") -> jax.Array:
    """PyTorch's ``ConvTranspose2d(stride=2, padding=(k−1)//2, output_padding=k % 2)`` of NHWC
    maps: (N, H, W, in) → (N, 2H, 2W, out). ``kernel`` is (k, k, in, out), PyTorch's weight
    (in, out, k, k) transposed: input pixel i adds x[i]·kernel[t] to output pixel 2i − P + t.

    With the native CPU kernels (where :func:`conv2d` uses them): one native transposed
    convolution, its gradients native too (:func:`jaxcolor.cpu.native_ops.conv_transpose2x`).
    Elsewhere on CPU with ``impl="auto"``: each of the 4 output pixel phases is a stride-1
    convolution of x with the taps that reach it (1×1, 1×2, 2×1 and 2×2 for k = 3) and the
    phases are interleaved. Same values up to float rounding (tested against XLA's)."""
    size = kernel.shape[0]
    padding, output_padding = stride2_padding(size)
    if _use_native(x, kernel, impl):
        return native_ops.conv_transpose2x(x, kernel, _bias_or_zeros(bias, kernel),
                                        (padding, padding))
    if not _phase_forms(impl):
        low, high = size - 1 - padding, size - 1 - padding + output_padding
        y = lax.conv_general_dilated(x, jnp.flip(kernel, (0, 1)), (1, 1), [(low, high)] * 2,
                                     lhs_dilation=(2, 2),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y if bias is None else y + bias
    offset = _transposed_offset(size)
    phases = [conv2d(x, phase_kernel, bias, phase_padding, impl)
              for phase_kernel, phase_padding in
              (_phase_kernel(kernel, offset, parities) for parities in PARITIES)]
    return _depth_to_space(jnp.concatenate(phases, axis=-1))


def _bias_or_zeros(bias: jax.Array | None, kernel: jax.Array) -> jax.Array:
    return jnp.zeros(kernel.shape[-1:], kernel.dtype) if bias is None else bias


# A layer's input: feature maps concatenated along channels, each at the layer's resolution
# (False) or at half of it, standing for its nearest ×2 upsampling (True).
Parts = Sequence[tuple[jax.Array, bool]]


def compute_dtype(x: jax.Array, *params: jax.Array) -> tuple[jax.Array, ...]:
    """``params`` (float32) cast to the dtype of ``x``: every layer computes in the dtype of its
    input (bfloat16 activations and convolution inputs for mixed precision), while parameters,
    BatchNorm statistics and their gradients stay float32."""
    return tuple(param.astype(x.dtype) for param in params)


class Conv(nn.Module):
    """k×k SAME convolution with bias over the channel concatenation of ``parts``, in the parts'
    dtype (:func:`compute_dtype`).

    The parameters are ``nn.Conv``'s (same names, shapes and initialisation). Half-resolution
    parts go through :func:`conv_of_upsampled` with their slice of the kernel; the others are
    concatenated and convolved once; the results are summed. The bias enters one of these
    convolutions (the full-resolution one if any), where the native kernels add it and sum its
    gradient in the same passes."""

    features: int
    kernel: int
    conv_init: str = "pytorch"
    impl: str = "auto"  # CONV_IMPLEMENTATIONS

    @nn.compact
    def __call__(self, parts: Parts) -> jax.Array:
        channels = [x.shape[-1] for x, _ in parts]
        kernel = self.param("kernel", CONV_INITS[self.conv_init],
                            (self.kernel, self.kernel, sum(channels), self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        kernel, bias = compute_dtype(parts[0][0], kernel, bias)
        starts = np.cumsum([0, *channels])
        slices = [kernel[:, :, start:end] for start, end in zip(starts, starts[1:], strict=False)]
        half = [(x, w) for (x, upsampled), w in zip(parts, slices, strict=True) if upsampled]
        full = [(x, w) for (x, upsampled), w in zip(parts, slices, strict=True) if not upsampled]
        terms = []
        if full:
            terms.append(conv2d(jnp.concatenate([x for x, _ in full], axis=-1),
                                jnp.concatenate([w for _, w in full], axis=2), bias,
                                impl=self.impl))
        for x, w in half:  # the bias goes to the first term only
            terms.append(conv_of_upsampled(x, w, None if terms else bias, self.impl))
        return sum(terms[1:], terms[0])


def _sums_by_matmul() -> bool:
    """Whether :func:`channel_sums` multiplies by ones: on CPU, where XLA runs large reductions
    as trees of reduce-windows, slower per BatchNorm (BENCHMARKS.md, "What each layer rewrite
    buys"); elsewhere XLA's reductions."""
    return jax.default_backend() == "cpu"


def channel_sums(x: jax.Array, by_matmul: bool | None = None) -> jax.Array:
    """Per-channel float32 sums of NHWC maps, (C,). ``by_matmul`` (default: on CPU): each
    image's sum as a batched matrix-vector product, then the sum over images (accurate to ~1e-6
    relative; one product over all pixels would accumulate N·H·W terms in sequence, ~1e-5)."""
    if by_matmul is None:
        by_matmul = _sums_by_matmul()
    if not by_matmul:
        return jnp.sum(x, axis=tuple(range(x.ndim - 1)), dtype=jnp.float32)
    per_image = x.reshape(x.shape[0], -1, x.shape[-1])
    ones = jnp.ones(per_image.shape[:2], x.dtype)
    return jnp.einsum("nm,nmc->nc", ones, per_image,
                      preferred_element_type=jnp.float32).sum(axis=0)


def channel_moments(a: jax.Array, b: jax.Array, shift: jax.Array | None = None,
                    impl: str = "auto") -> tuple[jax.Array, jax.Array]:
    """Per-channel Σ a and Σ a·(b − shift) of NHWC maps of one shape (``shift`` per channel,
    default 0): one native pass where :func:`conv2d` runs native kernels
    (:func:`jaxcolor.cpu.native.channel_moments`), else :func:`channel_sums` of a and of the
    product."""
    shift = jnp.zeros(a.shape[-1:], jnp.float32) if shift is None else shift  # f32 products
    if _use_native(a, b, impl):
        return native.channel_moments(a, b, shift)
    return channel_sums(a), channel_sums(a * (b - shift))


def batch_statistics(x: jax.Array, impl: str = "auto") -> tuple[jax.Array, jax.Array]:
    """Per-channel mean and (biased) variance as flax computes them (``use_fast_variance``)."""
    count = x.size // x.shape[-1]
    sums, squares = channel_moments(x, x, impl=impl)
    mean = sums / count
    return mean, jnp.maximum(0.0, squares / count - mean * mean)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
               impl: str = "auto") -> jax.Array:
    """(x − mean) / √(var + ε) · scale + bias with the batch's statistics (training mode), in
    the dtype of x (statistics and parameters float32).

    The backward pass is the closed form (two per-channel sums) rather than autodiff through
    the statistics (four), which is what makes it cheaper; same gradients (tested)."""
    return _batch_norm_forward(x, scale, bias, epsilon, impl)[0]


def _batch_norm_forward(x, scale, bias, epsilon, impl):
    mean, var = batch_statistics(x, impl)
    inverse_std = lax.rsqrt(var + epsilon)
    y = (x - mean) * (inverse_std * scale) + bias
    return y.astype(x.dtype), (x, mean, inverse_std, scale)


def _batch_norm_backward(_epsilon, impl, residual, grad):
    x, mean, inverse_std, scale = residual
    count = x.size // x.shape[-1]
    grad_bias, centred_sums = channel_moments(grad, x, mean, impl)
    grad_scale = centred_sums * inverse_std
    normalised = (x - mean) * inverse_std
    grad_x = (scale * inverse_std / count) * (count * grad - grad_bias - normalised * grad_scale)
    return grad_x.astype(x.dtype), grad_scale, grad_bias


batch_norm.defvjp(_batch_norm_forward, _batch_norm_backward)


class BatchNorm(nn.Module):
    """``nn.BatchNorm`` over the last axis: the same parameters (scale, bias), running averages
    (batch_stats mean, var; not updated while initialising) and values, faster (see
    :func:`batch_norm`); in the dtype of its input, with float32 statistics."""

    use_running_average: bool
    momentum: float
    epsilon: float
    impl: str = "auto"  # CONV_IMPLEMENTATIONS: how the batch statistics are summed

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        features = (x.shape[-1],)
        scale = self.param("scale", nn.initializers.ones, features)
        bias = self.param("bias", nn.initializers.zeros, features)
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, features)
        running_var = self.variable("batch_stats", "var", jnp.ones, features)
        if self.use_running_average:
            inverse_std = lax.rsqrt(running_var.value + self.epsilon)
            return ((x - running_mean.value) * (inverse_std * scale) + bias).astype(x.dtype)
        if not self.is_initializing():
            mean, var = batch_statistics(jax.lax.stop_gradient(x), self.impl)
            running_mean.value = self.momentum * running_mean.value + (1 - self.momentum) * mean
            running_var.value = self.momentum * running_var.value + (1 - self.momentum) * var
        return batch_norm(x, scale, bias, self.epsilon, self.impl)
