from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.cpu import native
from jaxcolor.models import layers
from jaxcolor.models.layers import (
    BatchNorm,
    batch_norm,
    channel_sums,
    conv2d,
    conv_of_upsampled,
    conv_stride2,
    conv_transpose2x,
    maxpool2x,
    stride2_padding,
    upsample2x,
)


@pytest.mark.parametrize("ties", [False, True])
def test_fast_maxpool_matches_flax_values_and_gradients(ties):
    x = jax.random.normal(jax.random.key(1), (3, 8, 12, 5))
    if ties:
        x = jnp.round(x)  # many equal values per window: the first maximum must win
    weights = jnp.arange(1.0, 1.0 + 3 * 4 * 6 * 5).reshape(3, 4, 6, 5)

    def reference(v):
        return nn.max_pool(v, (2, 2), strides=(2, 2))

    np.testing.assert_array_equal(maxpool2x(x), reference(x))
    ours = jax.grad(lambda v: jnp.sum(maxpool2x(v) * weights))(x)
    theirs = jax.grad(lambda v: jnp.sum(reference(v) * weights))(x)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("size", [1, 3, 5, 7])
def test_conv_of_upsampled_equals_convolving_the_upsampled_map(size):
    x = jax.random.normal(jax.random.key(0), (2, 5, 7, 3))
    kernel = jax.random.normal(jax.random.key(1), (size, size, 3, 4))
    weights = jax.random.normal(jax.random.key(2), (2, 10, 14, 4))
    np.testing.assert_allclose(conv_of_upsampled(x, kernel), conv2d(upsample2x(x), kernel),
                               rtol=1e-5, atol=1e-5)

    def loss(conv, x, kernel):
        return jnp.sum(conv(x, kernel) * weights)

    ours = jax.grad(lambda *a: loss(conv_of_upsampled, *a), argnums=(0, 1))(x, kernel)
    theirs = jax.grad(lambda *a: loss(lambda v, w: conv2d(upsample2x(v), w), *a),
                      argnums=(0, 1))(x, kernel)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_conv_over_parts_equals_nn_conv_over_their_concatenation():
    """Conv over full- and half-resolution parts: the values and gradients (parameters and every
    part) of nn.Conv over their concatenation, the half-resolution part upsampled."""
    keys = jax.random.split(jax.random.key(0), 5)
    a = jax.random.normal(keys[0], (2, 8, 6, 3))
    b = jax.random.normal(keys[1], (2, 8, 6, 1))
    half = jax.random.normal(keys[2], (2, 4, 3, 2))
    weights = jax.random.normal(keys[3], (2, 8, 6, 5))
    ours = layers.Conv(5, 3)
    variables = jax.jit(lambda key: ours.init(key, [(a, False), (b, False), (half, True)]))(
        keys[4])

    def loss_ours(variables, a, b, half):
        return jnp.sum(ours.apply(variables, [(a, False), (b, False), (half, True)]) * weights)

    def loss_flax(variables, a, b, half):
        concatenated = jnp.concatenate([a, b, upsample2x(half)], axis=-1)
        return jnp.sum(nn.Conv(5, (3, 3), padding="SAME").apply(variables, concatenated)
                       * weights)

    got, want = (jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))(variables, a, b, half)
                 for loss in (loss_ours, loss_flax))
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4)


def pytorch_definition(x, kernel, transposed):
    """PyTorch's stride-2 Conv2d / ConvTranspose2d (padding P, output_padding k mod 2) by
    their definitions, in loops over NHWC NumPy arrays: output pixel o = 2i − P + t of input
    pixel i (transposed), input pixel 2o + t − P of output pixel o (convolution)."""
    n, h, w, _ = x.shape
    size, out_channels = kernel.shape[0], kernel.shape[-1]
    padding, _ = stride2_padding(size)
    scale = 2 if transposed else 0.5
    out = np.zeros((n, int(h * scale), int(w * scale), out_channels), np.float64)
    for a in range(size):
        for b in range(size):
            for i in range(out.shape[1] if not transposed else h):
                for j in range(out.shape[2] if not transposed else w):
                    if transposed:
                        oi, oj, ii, ij = 2 * i - padding + a, 2 * j - padding + b, i, j
                    else:
                        oi, oj, ii, ij = i, j, 2 * i + a - padding, 2 * j + b - padding
                    if 0 <= oi < out.shape[1] and 0 <= oj < out.shape[2] and 0 <= ii < h \
                            and 0 <= ij < w:
                        out[:, oi, oj] += x[:, ii, ij] @ kernel[a, b]
    return out


# How the stride-2 layers run, by --conv_impl: the native kernels, the phase forms (auto's on
# CPU where the native kernels do not run: switched off here) or XLA's own strided ops.
STRIDE2_FORMS = {"native kernels": "native", "phase forms": "auto", "XLA's strided ops": "xla"}


def use_stride2_form(monkeypatch, form) -> str:
    """The convolution implementation that runs ``form`` (the native kernels off for the phase
    forms, as JAXCOLOR_NATIVE=0 does)."""
    if form == "native kernels" and not native.available():
        pytest.skip("native kernels need Linux x86-64, AVX2 or AVX-512F, g++")
    if form == "phase forms":
        monkeypatch.setenv(native.DISABLE_ENV, "0")
    return STRIDE2_FORMS[form]


@pytest.mark.parametrize("form", STRIDE2_FORMS)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("layer", [conv_stride2, conv_transpose2x])
def test_stride2_layers_compute_pytorchs_layers_and_xlas_gradients(layer, size, form,
                                                                    monkeypatch):
    """Every form (CPU: native kernels, else phase forms) equals PyTorch's definition and its
    gradients equal XLA's strided ops', and it doubles/halves the image size for every kernel
    size."""
    x = jax.random.normal(jax.random.key(0), (2, 6, 4, 3))
    kernel = jax.random.normal(jax.random.key(1), (size, size, 3, 5))
    bias = jax.random.normal(jax.random.key(2), (5,))
    expected = pytorch_definition(np.asarray(x, np.float64), np.asarray(kernel, np.float64),
                                  layer is conv_transpose2x) + np.asarray(bias)
    weights = jax.random.normal(jax.random.key(3), expected.shape)

    def value_and_grads(impl):
        return jax.jit(jax.value_and_grad(
            lambda *a: jnp.sum(jnp.sin(layer(*a, impl)) * weights), argnums=(0, 1, 2)))(
            x, kernel, bias)

    want = value_and_grads(use_stride2_form(monkeypatch, "XLA's strided ops"))
    impl = use_stride2_form(monkeypatch, form)
    np.testing.assert_allclose(jax.jit(layer, static_argnums=3)(x, kernel, bias, impl), expected,
                               rtol=1e-5, atol=1e-5)
    got = value_and_grads(impl)
    for ours, xla in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(ours, xla, rtol=1e-4, atol=1e-4)


def test_stride2_padding_keeps_sizes_exact():
    """The (padding, output_padding) the newer edition's nets need for kernels 3, 4 and 5."""
    assert [stride2_padding(k) for k in (3, 4, 5)] == [(1, 1), (1, 0), (2, 1)]


def test_channel_sums_by_matmul_match_the_reduction():
    x = jax.random.normal(jax.random.key(0), (7, 6, 5, 3)) * 3 + 10
    exact = np.asarray(x, np.float64).sum(axis=(0, 1, 2))
    for by_matmul in (True, False):
        np.testing.assert_allclose(channel_sums(x, by_matmul=by_matmul), exact, rtol=1e-6)


@pytest.mark.parametrize("native_sums", [True, False])
def test_channel_moments_equal_float64_sums(native_sums, monkeypatch):
    """One native pass (CPU) or two XLA sums: Σ a and Σ a·(b − shift) per channel, to float
    rounding, including 24 channels (a 16 + 8-lane tail) and large means."""
    if native_sums and not native.available():
        pytest.skip("native kernels need Linux x86-64, AVX2 or AVX-512F, g++")
    impl = "native" if native_sums else "xla"
    a = jax.random.normal(jax.random.key(0), (7, 6, 5, 24)) * 3 + 10
    b = jax.random.normal(jax.random.key(1), (7, 6, 5, 24)) - 4
    shift = jnp.linspace(-5.0, 5.0, 24)
    exact = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(shift, np.float64)
    sums, products = layers.channel_moments(a, b, shift, impl)
    np.testing.assert_allclose(sums, exact[0].sum(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(products, (exact[0] * (exact[1] - exact[2])).sum(axis=(0, 1, 2)),
                               rtol=1e-5)
    np.testing.assert_allclose(layers.channel_moments(a, a, impl=impl)[1],
                               (exact[0] ** 2).sum(axis=(0, 1, 2)), rtol=1e-6)


@pytest.mark.parametrize("native_sums", [True, False])
def test_batch_norm_matches_flax_in_training_and_inference(native_sums, monkeypatch):
    """Values, running averages (and none while initialising), and gradients of every input,
    with the native kernels' sums (CPU) and with XLA's."""
    if native_sums and not native.available():
        pytest.skip("native kernels need Linux x86-64, AVX2 or AVX-512F, g++")
    impl = "native" if native_sums else "xla"
    x = jax.random.normal(jax.random.key(0), (6, 4, 4, 5)) * 2 + 1
    ours, theirs = (BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5, impl=impl),
                    nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5))
    variables = jax.jit(ours.init)(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, variables) == jax.tree.map(
        jnp.shape, jax.eval_shape(theirs.init, jax.random.key(1), x))
    np.testing.assert_array_equal(variables["batch_stats"]["mean"], 0.0)  # init: no update
    variables = {"params": {"scale": jnp.linspace(0.5, 2.0, 5), "bias": jnp.arange(5.0)},
                 "batch_stats": {"mean": jnp.full(5, 0.3), "var": jnp.full(5, 2.0)}}
    (y, stats), (y_ref, stats_ref) = (
        jax.jit(partial(module.apply, mutable=["batch_stats"]))(variables, x)
        for module in (ours, theirs))
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(stats), jax.tree.leaves(stats_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    inference = [jax.jit(module.clone(use_running_average=True).apply)(variables, x)
                 for module in (ours, theirs)]
    np.testing.assert_allclose(inference[0], inference[1], rtol=1e-5, atol=1e-5)

    weights = jax.random.normal(jax.random.key(2), x.shape)

    def loss(norm, x, scale, bias):
        return jnp.sum(norm(x, scale, bias) * weights)

    def flax_norm(x, scale, bias):
        return theirs.apply({"params": {"scale": scale, "bias": bias},
                             "batch_stats": variables["batch_stats"]}, x,
                            mutable=["batch_stats"])[0]

    args = (x, variables["params"]["scale"], variables["params"]["bias"])
    ours_grad = jax.jit(jax.grad(lambda *a: loss(lambda *b: batch_norm(*b, 1e-5, impl), *a),
                                 argnums=(0, 1, 2)))(*args)
    theirs_grad = jax.jit(jax.grad(lambda *a: loss(flax_norm, *a), argnums=(0, 1, 2)))(*args)
    for a, b in zip(ours_grad, theirs_grad, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_batch_norm_of_bfloat16_maps_is_float32_batch_norm_rounded_once():
    """bfloat16 in and out, computed in float32 inside: values and input gradients within one
    bfloat16 rounding of float32's on the same numbers; statistics and parameter gradients
    float32."""
    x = (jax.random.normal(jax.random.key(0), (6, 4, 4, 5)) * 2 + 1).astype(jnp.bfloat16)
    cotangent = jax.random.normal(jax.random.key(2), x.shape).astype(jnp.bfloat16)
    scale, bias = jnp.linspace(0.5, 2.0, 5), jnp.arange(5.0)
    results = {}
    for dtype in (jnp.bfloat16, jnp.float32):
        y, pullback = jax.vjp(lambda x, s, b: batch_norm(x, s, b, 1e-5, "xla"),
                              x.astype(dtype), scale, bias)
        results[dtype] = (y, *pullback(cotangent.astype(dtype)))
    assert [a.dtype.name for a in results[jnp.bfloat16]] == ["bfloat16", "bfloat16", "float32",
                                                              "float32"]
    for ours, exact in zip(results[jnp.bfloat16], results[jnp.float32], strict=True):
        rounding = 2.0 ** -8 if ours.dtype == jnp.bfloat16 else 1e-5
        np.testing.assert_allclose(np.asarray(ours, np.float32), exact,
                                   rtol=rounding, atol=rounding * float(jnp.std(exact)))
    mean, var = layers.batch_statistics(x, "xla")
    assert mean.dtype == var.dtype == jnp.float32
    np.testing.assert_allclose(var, jnp.var(x.astype(jnp.float32), axis=(0, 1, 2)), rtol=1e-5)


def test_max_and_first_argmax_match_numpy_with_ties_and_nan():
    from jaxcolor.models.layers import _max_and_first_argmax

    windows = np.array([[1.0, 3.0, 3.0, 2.0], [-np.inf] * 4, [0.0, np.nan, 5.0, np.nan],
                        [2.0, 2.0, 2.0, 2.0]], np.float32)
    maxima, first = _max_and_first_argmax(jnp.asarray(windows))
    np.testing.assert_array_equal(first, np.argmax(windows, axis=-1))  # NumPy: first NaN wins
    np.testing.assert_array_equal(maxima, np.max(windows, axis=-1))
