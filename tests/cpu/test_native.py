"""The native CPU convolution kernels against XLA's convolution: values and gradients."""

import concurrent.futures
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcolor.cpu import native
from jaxcolor.errors import UserError
from jaxcolor.models import ModelSpec, build_model, layers
from jaxcolor.objectives import CLASSIFICATION
from jaxcolor.training import parallel
from jaxcolor.training import state as train_state
from jaxcolor.training import steps as train

needs_native = pytest.mark.skipif(not native.available(),
                                  reason="native kernels need Linux x86-64, AVX2 or AVX-512F, g++")
# Every instruction set this CPU runs (AVX-512 machines run the AVX2 kernels too).
SUPPORTED_ISAS = [isa for isa in native.ISAS if native.cpu_supports(isa)]
# Those tested: each vector width once (the AVX512_BF16 build's float32 kernels are the AVX-512
# build's source; each build compiles warning-clean, test_the_kernels_compile_warning_clean).
TESTED_ISAS = [isa for isa in SUPPORTED_ISAS
               if not (isa == "avx512" and "avx512bf16" in SUPPORTED_ISAS)]
needs_bfloat16 = pytest.mark.skipif(not native.runs(jnp.bfloat16),
                                    reason="bfloat16 kernels need AVX512_BF16 (and g++)")


@pytest.fixture(params=TESTED_ISAS)
def isa(request, monkeypatch):
    """Runs the test with the kernels of each supported instruction set (forced as a user
    would: ``JAXCOLOR_NATIVE_ISA``); the test traces afresh, so it calls that set's targets."""
    monkeypatch.setenv(native.ISA_ENV, request.param)
    assert native.available() and native.isa() == request.param
    return request.param

# (batch, height, width, in channels, out channels, kernel size, padding (top, left) or None
# for SAME): 1- and 3-channel inputs, widths that are not multiples of the 8-pixel tile, channel
# counts around the 16/32-lane tiles, the 8-lane tail (24, 40; in whole tiles: 25 → 24 at width
# 16) and the 8-channel weight-gradient tile, AVX2's 24-channel blocks (24, 48, 96: whole and
# partial 4-row/pixel tiles), 1×1 and 5×5 kernels, a single image; the phase forms' rectangular
# kernels with one-sided padding, and an even kernel.
SHAPES = [(3, 8, 8, 1, 32, 3, None), (2, 7, 5, 3, 24, 3, None), (1, 9, 13, 17, 40, 3, None),
          (4, 4, 4, 9, 1, 3, None), (2, 6, 11, 33, 96, 3, None), (2, 5, 7, 6, 7, 5, None),
          (3, 4, 6, 5, 17, 1, None), (5, 16, 16, 32, 64, 3, None), (2, 7, 5, 3, 24, (2, 2), (0, 0)),
          (2, 6, 9, 17, 40, (1, 2), (0, 1)), (3, 5, 6, 9, 33, (2, 1), (1, 0)),
          (2, 8, 8, 4, 20, (4, 4), None), (2, 4, 16, 25, 24, 3, None),
          (2, 6, 10, 24, 48, 3, None)]


def assert_close(got, want, tolerance):
    """Equal up to float rounding: within ``tolerance`` × the largest magnitude of ``want``."""
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance * float(jnp.abs(want).max()))


def _xla_loss_and_grads(x, kernel, bias, weights, padding):
    return jax.jit(jax.value_and_grad(
        lambda v, k, b: jnp.sum(jnp.sin(layers._xla_conv2d(v, k, padding) + b) * weights),
        (0, 1, 2)))(x, kernel, bias)


@needs_native
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_native_conv_values_and_gradients_equal_xla(shape, isa):
    n, h, w, c_in, c_out, size, padding = shape
    size = size if isinstance(size, tuple) else (size, size)
    keys = jax.random.split(jax.random.key(n * h * w + c_in + c_out), 4)
    x = jax.random.normal(keys[0], (n, h, w, c_in))
    kernel = jax.random.normal(keys[1], (*size, c_in, c_out))
    bias = jax.random.normal(keys[2], (c_out,))
    weights = jax.random.normal(keys[3], (n, h, w, c_out))
    assert layers._use_native(x, kernel, "auto")
    xla = jax.jit(layers._xla_conv2d, static_argnums=2)(x, kernel, padding)
    without_bias, with_bias = jax.jit(
        lambda v, k, b: (layers.conv2d(v, k, padding=padding), layers.conv2d(v, k, b, padding)))(
        x, kernel, bias)
    assert_close(without_bias, xla, 1e-6)
    assert_close(with_bias, xla + bias, 1e-6)
    ours = jax.jit(jax.value_and_grad(
        lambda v, k, b: jnp.sum(jnp.sin(layers.conv2d(v, k, b, padding)) * weights), (0, 1, 2)))(
        x, kernel, bias)
    theirs = _xla_loss_and_grads(x, kernel, bias, weights, padding)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-4)
    for got, want in zip(ours[1], theirs[1], strict=True):
        assert_close(got, want, 1e-5)


# (batch, height, width, in channels, out channels, kernel size) of the stride-2 layers (maps
# of height × width in, height/2 × width/2 or 2·height × 2·width out): the first layer's 1
# channel, 24-channel (8-lane) tails, partial pixel tiles, AVX2's 96-channel blocks, even
# kernels, 1×1 kernels whose odd output phases get no tap.
STRIDE2_SHAPES = [(3, 16, 16, 1, 32, 3), (2, 8, 8, 64, 24, 3), (2, 4, 10, 17, 40, 4),
                  (1, 6, 14, 33, 96, 5), (2, 2, 2, 3, 7, 1), (2, 12, 6, 25, 24, 2)]


@needs_native
@pytest.mark.parametrize("shape", STRIDE2_SHAPES, ids=str)
@pytest.mark.parametrize("layer", ["conv_stride2", "conv_transpose2x"])
def test_native_stride2_layers_equal_xla_values_and_gradients(layer, shape, isa):
    """The strided and transposed native kernels (both directions run in each layer's forward
    and backward pass: checked in the compiled program) against XLA's strided ops."""
    n, h, w, c_in, c_out, size = shape
    layer = getattr(layers, layer)
    keys = jax.random.split(jax.random.key(n * h * w + c_in + c_out + size), 4)
    x = jax.random.normal(keys[0], (n, h, w, c_in))
    kernel = jax.random.normal(keys[1], (size, size, c_in, c_out))
    bias = jax.random.normal(keys[2], (c_out,))
    weights = jax.random.normal(keys[3], jax.eval_shape(layer, x, kernel, bias).shape)
    loss = jax.jit(jax.value_and_grad(lambda *a: jnp.sum(jnp.sin(layer(*a)) * weights),
                                      (0, 1, 2)))
    assert layers._use_native(x, kernel, "auto")
    assert f"jaxcolor_conv_transpose_{isa}" in loss.lower(x, kernel, bias).as_text()
    ours = loss(x, kernel, bias)
    theirs = jax.jit(jax.value_and_grad(
        lambda *a: jnp.sum(jnp.sin(layer(*a, impl="xla")) * weights), (0, 1, 2)))(x, kernel, bias)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-4)
    for got, want in zip(ours[1], theirs[1], strict=True):
        assert_close(got, want, 5e-5)


@needs_native
@pytest.mark.parametrize("name", ["unet", "unet_transpose"])
def test_native_kernels_run_in_the_train_step_and_match_xla_steps(isa, name):
    """Train steps through the native kernels (checked in the compiled program) give the
    losses and parameters of the same steps with XLA's convolutions (its strided ones too).
    (SGD: Adam's first steps turn float noise
    in the zero gradients of the biases that feed BatchNorm into full steps.)"""
    tx, mesh = optax.sgd(0.1), parallel.data_mesh()
    rng = np.random.default_rng(0)
    inputs = jnp.asarray(rng.random((1, 8, 16, 16, 1), np.float32))
    targets = jnp.asarray(rng.integers(0, 5, (1, 8, 16, 16)), jnp.int32)
    order = jnp.arange(8).reshape(1, 2, 4)
    results = {}
    for use in (True, False):
        model = build_model(ModelSpec(name, num_filters=8, kernel=3, num_outputs=5,
                                      conv_impl="native" if use else "xla"))
        state = train_state.create_train_state(model, tx, inputs[0, :1], jax.random.key(0))
        lowered = train.make_train_step(model, tx, CLASSIFICATION, mesh).lower(
            state, inputs, targets, order, 0)
        assert (f"jaxcolor_conv_weight_grad_{isa}" in lowered.as_text()) == use
        step = lowered.compile()
        for i in range(2):
            state, loss = step(state, inputs, targets, order, i)
        results[use] = (float(loss), state.params)
    assert results[True][0] == pytest.approx(results[False][0], rel=1e-5)
    for got, want in zip(jax.tree.leaves(results[True][1]), jax.tree.leaves(results[False][1]),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@needs_native
def test_native_weight_gradient_is_bitwise_reproducible_and_handles_no_images(isa):
    """Partial sums are combined in a fixed order, whichever thread computed them."""
    x = jax.random.normal(jax.random.key(0), (37, 8, 8, 16))
    grad = jax.random.normal(jax.random.key(1), (37, 8, 8, 24))
    weight_grad = jax.jit(lambda a, b: native.conv_weight_grad(a, b, (3, 3), (1, 1)))
    first = [np.asarray(g) for g in weight_grad(x, grad)]
    for _ in range(5):
        for again, want in zip(weight_grad(x, grad), first, strict=True):
            np.testing.assert_array_equal(again, want)
    empty = weight_grad(jnp.zeros((0, 8, 8, 16)), jnp.zeros((0, 8, 8, 24)))
    np.testing.assert_array_equal(empty[0], np.zeros((3, 3, 16, 24)))
    np.testing.assert_array_equal(empty[1], np.zeros(24))


@needs_native
def test_native_channel_moments_are_bitwise_reproducible_and_handle_no_images(isa):
    """BatchNorm's sums: partial sums combined in a fixed order, whichever thread ran them."""
    a = jax.random.normal(jax.random.key(0), (37, 8, 8, 24))
    b = jax.random.normal(jax.random.key(1), (37, 8, 8, 24))
    moments = jax.jit(lambda a, b: native.channel_moments(a, b, jnp.ones(24)))
    first = [np.asarray(m) for m in moments(a, b)]
    for _ in range(5):
        for again, want in zip(moments(a, b), first, strict=True):
            np.testing.assert_array_equal(again, want)
    for empty in moments(jnp.zeros((0, 8, 8, 24)), jnp.zeros((0, 8, 8, 24))):
        np.testing.assert_array_equal(empty, np.zeros(24))


def test_forms_that_the_native_kernels_do_not_cover_use_xla():
    x = jnp.ones((2, 4, 4, 3))
    assert not layers._use_native(x.astype(jnp.float16), jnp.ones((3, 3, 3, 4), jnp.float16),
                                  "auto")
    assert not layers._use_native(x.astype(jnp.bfloat16), jnp.ones((3, 3, 3, 4)), "auto")


@pytest.mark.slow  # a new Python process
def test_native_kernels_can_be_switched_off(tmp_path):
    """JAXCOLOR_NATIVE=0: not built, not used; the models still train (XLA's convolutions)."""
    code = ("import jax.numpy as jnp; from jaxcolor.models import layers; "
            "from jaxcolor.cpu import native; assert not native.available(); "
            "assert not layers._use_native(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 3)), 'auto')")
    env = {**os.environ, "JAXCOLOR_NATIVE": "0", "JAXCOLOR_NATIVE_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # a new Python process
@pytest.mark.skipif(sys.platform != "linux", reason="the build is tried on Linux only")
def test_a_failed_build_warns_once_and_falls_back_to_xla(tmp_path):
    code = ("import warnings, jax.numpy as jnp; from jaxcolor.models import layers\n"
            "from jaxcolor.cpu import native\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    assert not layers._use_native(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 3)),"
            " 'auto')\n"
            "    assert not native.available()\n"
            "print(len(caught), caught[0].message if caught else '')")
    env = {**os.environ, "CXX": "false", "JAXCOLOR_NATIVE_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120, check=True)
    count, _, message = result.stdout.strip().partition(" ")
    if native.isa():  # else no build is tried, and nothing to warn about
        assert count == "1" and "native CPU kernels not built" in message
        assert "using XLA's convolutions" in message


def test_the_best_instruction_set_is_chosen_unless_one_is_forced(monkeypatch):
    monkeypatch.delenv(native.ISA_ENV, raising=False)
    assert native.isa() == (SUPPORTED_ISAS[0] if SUPPORTED_ISAS else None)
    monkeypatch.setenv(native.ISA_ENV, "avx2")
    assert native.isa() == "avx2"
    monkeypatch.setenv(native.ISA_ENV, "sse")
    with pytest.raises(UserError, match="JAXCOLOR_NATIVE_ISA='sse': expected one of "
                                        "avx512bf16, avx512, avx2"):
        native.isa()


@needs_native
def test_the_kernels_build_in_the_background_once_per_source(tmp_path, monkeypatch):
    """Asked twice, one background build; built again, the same library (content-addressed),
    untouched, and no scratch left behind. (The AVX2 build, the quickest to compile: the
    mechanism is the same for every instruction set.)"""
    monkeypatch.setenv(native.CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(native.ISA_ENV, "avx2")
    monkeypatch.setattr(native, "_builds", {})
    layers.prepare_kernels()
    layers.prepare_kernels()
    assert list(native._builds) == [native.isa()]
    library = native._builds[native.isa()].result(timeout=300)
    assert library.parent == tmp_path and library.suffix == ".so"
    built = library.stat().st_mtime_ns
    assert native._build(os.environ.get("CXX", "g++"), native.isa()) == library
    assert library.stat().st_mtime_ns == built
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([library.name, native.LOCK_NAME])


def test_processes_building_at_once_compile_the_kernels_once(tmp_path, monkeypatch):
    """Builds started together (test workers, a sweep's runs on a fresh machine) wait for the
    first one's library: one compile. The compiler is a stand-in that logs its calls."""
    log = tmp_path / "calls.log"
    compiler = tmp_path / "fake-g++"
    compiler.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n"
                        "case \"$*\" in *--version*) echo fake 1.0; exit 0;; esac\n"
                        "sleep 0.5\nfor target; do :; done\ntouch \"$target\"\n")
    compiler.chmod(0o755)
    monkeypatch.setenv(native.CACHE_DIR_ENV, str(tmp_path / "cache"))
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        built = list(pool.map(lambda _: native._build(str(compiler), "avx2"), range(3)))
    assert len(set(built)) == 1 and built[0].exists()
    assert sum(" -o " in line for line in log.read_text().splitlines()) == 1


def test_nothing_builds_in_the_background_when_switched_off(monkeypatch):
    monkeypatch.setenv(native.DISABLE_ENV, "0")
    monkeypatch.setattr(native, "_builds", {})
    layers.prepare_kernels()
    assert native._builds == {}


@pytest.mark.slow
@pytest.mark.parametrize("isa", list(native.ISAS))
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_the_kernels_compile_warning_clean(isa, tmp_path):
    """The build's own command (-Wall -Wextra) with warnings as errors, for each instruction
    set."""
    command = native.compile_command(shutil.which("g++"), isa)
    result = subprocess.run([*command, "-Werror", "-o", str(tmp_path / "kernels.so")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@needs_native
def test_a_model_vmapped_over_its_parameters_runs_the_native_kernels(isa):
    """vmap of a model's loss gradient over two parameter sets (an ensemble) with the native
    kernels equals each set's gradient alone, and XLA's."""
    def loss_grads(impl):
        model = build_model(ModelSpec("unet", num_filters=4, kernel=3, num_outputs=5,
                                      conv_impl=impl))
        x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
        stacked = jax.jit(jax.vmap(lambda key: model.init(key, x[:1])))(
            jax.random.split(jax.random.key(1)))

        def grads(variables):
            def loss(params):
                out, _ = model.apply({**variables, "params": params}, x, train=True,
                                     mutable=["batch_stats"])
                return jnp.sum(jnp.sin(out))
            return jax.grad(loss)(variables["params"])

        together = jax.jit(jax.vmap(grads))(stacked)
        alone = [jax.jit(grads)(jax.tree.map(lambda leaf, i=i: leaf[i], stacked))
                 for i in range(2)]
        return together, alone

    native_together, native_alone = loss_grads("native")
    xla_together, _ = loss_grads("xla")

    def assert_trees_close(got, want, tolerance):  # the biases before BatchNorm get ~0: float
        scale = max(float(jnp.abs(leaf).max()) for leaf in jax.tree.leaves(want))  # noise
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=tolerance * scale)

    for i in range(2):
        assert_trees_close(jax.tree.map(lambda leaf, i=i: leaf[i], native_together),
                           native_alone[i], 1e-5)
    assert_trees_close(native_together, xla_together, 1e-4)


def relative_error(got, want):
    got, want = (np.asarray(a, np.float32) for a in (got, want))
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


# (in channels, out channels, stride or "transposed"[, kernel size, default 3]): odd channel
# counts (paired with a zero channel), the 16-lane and 8-lane tails, two 16-lane vectors, every
# tile height (12, 8, 4, 2, 1: 33 channels), several 32-channel blocks; 1-channel inputs, whose
# weight gradient tiles a kernel row's taps (1 to 5 wide).
BFLOAT16_LAYERS = [(1, 32, 1), (25, 24, 1), (33, 40, 1), (7, 40, 2), (32, 24, "transposed"),
                   (5, 3, "transposed"), (1, 24, 1, 5), (1, 8, 1, 2), (1, 16, 1, 4),
                   (1, 20, 1, 1)]


@needs_bfloat16
@pytest.mark.parametrize("layer", BFLOAT16_LAYERS, ids=str)
def test_bfloat16_kernels_are_float32_s_values_and_gradients_rounded_once(layer):
    """The bfloat16 kernels (vdpbf16ps, float32 sums) against XLA's float32 convolution of the
    same bfloat16 numbers: values and input gradients within one bfloat16 rounding, kernel and
    bias gradients too (float32 sums, rounded to the parameters' bfloat16)."""
    c_in, c_out, stride, kernel_size = (*layer, 3)[:4]
    size = 8 if stride == "transposed" else 16
    keys = jax.random.split(jax.random.key(c_in * c_out), 4)
    width = size + (2 if stride == 2 else 3)  # odd where it can be: pixel pairs with a tail
    x = jax.random.normal(keys[0], (3, size, width, c_in)).astype(jnp.bfloat16)
    kernel = (jax.random.normal(keys[1], (kernel_size, kernel_size, c_in, c_out))
              / kernel_size).astype(jnp.bfloat16)
    bias = jax.random.normal(keys[2], (c_out,)).astype(jnp.bfloat16)

    def layer_of(impl):
        if stride == "transposed":
            return lambda *a: layers.conv_transpose2x(*a, impl=impl)
        if stride == 2:
            return lambda *a: layers.conv_stride2(*a, impl=impl)
        return lambda *a: layers.conv2d(*a, impl=impl)

    ours, pullback = jax.vjp(layer_of("native"), x, kernel, bias)
    exact, exact_pullback = jax.vjp(layer_of("xla"), *(a.astype(jnp.float32)
                                                       for a in (x, kernel, bias)))
    assert ours.dtype == jnp.bfloat16
    assert relative_error(ours, exact) < 2.0 ** -8
    cotangent = jax.random.normal(keys[3], ours.shape).astype(jnp.bfloat16)
    for got, want in zip(pullback(cotangent), exact_pullback(cotangent.astype(jnp.float32)),
                         strict=True):
        assert got.dtype == jnp.bfloat16
        assert relative_error(got, want) < 2.0 ** -8


@needs_bfloat16
def test_bfloat16_channel_moments_are_float32_sums():
    a, b = (jax.random.normal(jax.random.key(i), (4, 8, 6, 24)).astype(jnp.bfloat16)
            for i in range(2))
    shift = jnp.linspace(-1.0, 1.0, 24)
    sums, products = native.channel_moments(a, b, shift)
    wide_a, wide_b = (v.astype(jnp.float32) for v in (a, b))
    np.testing.assert_allclose(sums, wide_a.sum(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(products, (wide_a * (wide_b - shift)).sum(axis=(0, 1, 2)),
                               rtol=1e-5, atol=1e-4)
    assert layers.batch_statistics(a, "native")[1].dtype == jnp.float32


@needs_bfloat16
def test_a_bfloat16_train_step_with_the_native_kernels_is_xla_s_within_rounding():
    """A whole UNet train step in bfloat16, native kernels against XLA's convolutions."""
    def step(impl):
        model = build_model(ModelSpec("unet", num_filters=8, kernel=3, num_outputs=5,
                                      conv_impl=impl))
        tx = optax.adam(1e-3)
        images = jax.random.uniform(jax.random.key(0), (1, 8, 16, 16, 1)).astype(jnp.bfloat16)
        labels = jax.random.randint(jax.random.key(1), (1, 8, 16, 16), 0, 5)
        state = train_state.create_train_state(model, tx, images[0, :1].astype(jnp.float32),
                                               jax.random.key(2))
        step = train.make_train_step(model, tx, CLASSIFICATION, parallel.data_mesh())
        state, loss = step(state, images, labels, jnp.arange(8)[None, None], 0)
        return loss, state.params

    (native_loss, native_params), (xla_loss, xla_params) = step("native"), step("xla")
    np.testing.assert_allclose(native_loss, xla_loss, rtol=1e-2)
    for got, want in zip(jax.tree.leaves(native_params), jax.tree.leaves(xla_params),
                         strict=True):
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(got, want, atol=2e-3)  # one Adam step: ±1e-3 each
