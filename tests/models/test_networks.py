from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.models import ModelSpec, build_model
from jaxcolor.models.layers import CONV_INITS, upsample2x
from jaxcolor.models.networks import BN_EPSILON, BN_MOMENTUM, CNN, ConvBlock, UNet

# Shapes and counts come from jax.eval_shape (no compilation), so these tests take milliseconds.


def abstract_init(model, shape):
    return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape))


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("nf, nc, k, cin", [(32, 24, 3, 1), (8, 10, 5, 3)])
def test_cnn_shapes_and_parameter_count(nf, nc, k, cin):
    model = CNN(num_filters=nf, num_outputs=nc, kernel=k)
    variables = abstract_init(model, (2, 32, 32, cin))
    assert jax.eval_shape(model.apply, variables, jnp.zeros((2, 32, 32, cin))).shape == (
        2, 32, 32, nc)
    convs = [(cin, nf), (nf, 2 * nf), (2 * nf, 2 * nf), (2 * nf, nf), (nf, nc), (nc, nc)]
    batchnorm = 2 * (nf + 2 * nf + 2 * nf + nf + nc)  # scale and bias per channel
    assert count(variables["params"]) == sum(conv_params(k, a, b) for a, b in convs) + batchnorm


def test_unet_shapes_and_parameter_count():
    nf, nc, k, cin = 32, 24, 3, 1
    model = UNet(num_filters=nf, num_outputs=nc, kernel=k)
    variables = abstract_init(model, (2, 32, 32, cin))
    assert jax.eval_shape(model.apply, variables, jnp.zeros((2, 32, 32, cin))).shape == (
        2, 32, 32, nc)
    convs = [(cin, nf), (nf, 2 * nf), (2 * nf, 2 * nf), (4 * nf, nf), (2 * nf, nc),
             (nc + cin, nc)]
    batchnorm = 2 * (nf + 2 * nf + 2 * nf + nf + nc)
    assert count(variables["params"]) == sum(conv_params(k, a, b) for a, b in convs) + batchnorm


@pytest.mark.parametrize("name", ["cnn", "unet"])
def test_intermediates_expose_every_block(name):
    model = build_model(ModelSpec(name, num_filters=4, kernel=3, num_outputs=6))
    variables = abstract_init(model, (1, 32, 32, 1))
    _, state = jax.eval_shape(lambda v, x: model.apply(v, x, mutable=["intermediates"]),
                              variables, jnp.zeros((1, 32, 32, 1)))
    shapes = {block: value["activations"][0].shape
              for block, value in state["intermediates"].items()}
    assert shapes == {"block1": (1, 16, 16, 4), "block2": (1, 8, 8, 8), "block3": (1, 8, 8, 8),
                      "block4": (1, 16, 16, 4), "block5": (1, 32, 32, 6)}


def test_models_are_fully_convolutional():
    model = UNet(num_filters=4, num_outputs=5)
    variables = abstract_init(model, (1, 32, 32, 1))
    assert jax.eval_shape(model.apply, variables, jnp.zeros((1, 64, 48, 1))).shape == (
        1, 64, 48, 5)


def test_regression_cnn_outputs_rgb():
    model = build_model(ModelSpec("regression_cnn", num_filters=4, kernel=3, num_outputs=3))
    variables = abstract_init(model, (1, 32, 32, 1))
    assert jax.eval_shape(model.apply, variables, jnp.zeros((3, 32, 32, 1))).shape == (
        3, 32, 32, 3)


def test_channel_mosaic_tiles_every_channel():
    from jaxcolor.runner.plots import channel_mosaic

    maps = np.random.default_rng(0).random((8, 8, 5)).astype(np.float32)
    mosaic = channel_mosaic(maps)
    assert mosaic.shape == (2 * 9 - 1, 3 * 9 - 1)  # 5 channels → 2 rows × 3 columns
    np.testing.assert_allclose(np.nanmax(mosaic), 1.0)
    assert np.isnan(mosaic[8]).all()  # the gap row between tiles


def test_up_block_normalises_before_upsampling_with_the_reference_values():
    """conv → BatchNorm → ReLU → Upsample (cheaper) = the reference conv → Upsample → BN → ReLU,
    in training (outputs, batch statistics, gradients) and at inference."""
    block = ConvBlock(features=5, kernel=3, resample="up")
    x = jax.random.normal(jax.random.key(0), (4, 6, 6, 3))
    variables = jax.jit(lambda key: block.init(key, [(x, False)], train=True))(jax.random.key(1))

    def reference(variables, x, train):
        conv = nn.Conv(5, (3, 3), padding="SAME")
        bn = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                          epsilon=BN_EPSILON)
        y = conv.apply({"params": variables["params"]["Conv_0"]}, x)
        y, updates = bn.apply({"params": variables["params"]["BatchNorm_0"],
                               "batch_stats": variables["batch_stats"]["BatchNorm_0"]},
                              upsample2x(y), mutable=["batch_stats"])
        return nn.relu(y), {"BatchNorm_0": updates["batch_stats"]}

    for train in (True, False):
        ours, stats = jax.jit(lambda v, train=train: block.apply(
            v, [(x, False)], train=train, mutable=["batch_stats"]))(variables)
        ours = upsample2x(ours)  # an up-block leaves the upsampling to the next layer
        expected, expected_stats = jax.jit(reference, static_argnums=2)(variables, x, train)
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
        if train:
            for a, b in zip(jax.tree.leaves(stats["batch_stats"]),
                            jax.tree.leaves(expected_stats), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    weights = jax.random.normal(jax.random.key(2), ours.shape)
    ours_grad = jax.jit(jax.grad(lambda v: jnp.sum(upsample2x(block.apply(
        v, [(x, False)], train=True, mutable=["batch_stats"])[0]) * weights)))(variables)
    expected_grad = jax.jit(jax.grad(lambda v: jnp.sum(reference(v, x, True)[0] * weights)))(
        variables)
    for a, b in zip(jax.tree.leaves(ours_grad["params"]),
                    jax.tree.leaves(expected_grad["params"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)  # conv bias: 0 ± rounding


class ReferenceBlock(nn.Module):
    """The reference block, literally: conv → MaxPool/Upsample → BatchNorm → ReLU."""

    features: int
    resample: str

    @nn.compact
    def __call__(self, x, train):
        x = nn.Conv(self.features, (3, 3), padding="SAME", kernel_init=CONV_INITS["pytorch"])(x)
        if self.resample == "down":
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        elif self.resample == "up":
            x = upsample2x(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                         epsilon=BN_EPSILON)(x)
        return nn.relu(x)


class ReferenceNet(nn.Module):
    """The reference CNN / U-Net (concatenating skips), with jaxcolor's parameter names."""

    nf: int
    nc: int
    skip: bool

    @nn.compact
    def __call__(self, x, train):
        def join(a, b):
            return jnp.concatenate([a, b], -1) if self.skip else a

        b1 = ReferenceBlock(self.nf, "down", name="block1")(x, train)
        b2 = ReferenceBlock(2 * self.nf, "down", name="block2")(b1, train)
        b3 = ReferenceBlock(2 * self.nf, "none", name="block3")(b2, train)
        b4 = ReferenceBlock(self.nf, "up", name="block4")(join(b3, b2), train)
        b5 = ReferenceBlock(self.nc, "up", name="block5")(join(b4, b1), train)
        return nn.Conv(self.nc, (3, 3), padding="SAME", kernel_init=CONV_INITS["pytorch"],
                       name="final")(join(b5, x))


@pytest.mark.parametrize("name", ["cnn", "unet"])
def test_models_compute_the_reference_network(name):
    """Same parameters (names, shapes, initial values), outputs, batch statistics and gradients
    as the reference block order with explicit upsampling and concatenation."""
    model = build_model(ModelSpec(name, num_filters=4, kernel=3, num_outputs=5))
    reference = ReferenceNet(nf=4, nc=5, skip=name == "unet")
    x = jax.random.normal(jax.random.key(0), (3, 16, 16, 1))
    variables = jax.jit(model.init)(jax.random.key(1), x)
    reference_variables = jax.jit(partial(reference.init, train=False))(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, reference_variables)
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(reference_variables),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    targets = jax.random.normal(jax.random.key(2), (3, 16, 16, 5))

    def loss(module, params):
        out, updates = module.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                    x, train=True, mutable=["batch_stats"])
        return jnp.mean((out - targets) ** 2), (out, updates["batch_stats"])

    (_, (ours, our_stats)), our_grads = jax.jit(jax.value_and_grad(
        lambda p: loss(model, p), has_aux=True))(variables["params"])
    (_, (theirs, their_stats)), their_grads = jax.jit(jax.value_and_grad(
        lambda p: loss(reference, p), has_aux=True))(variables["params"])
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    for mine, expected in ((our_stats, their_stats), (our_grads, their_grads)):
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    evaluated = jax.jit(model.apply)(variables, x)
    expected = jax.jit(partial(reference.apply, train=False))(variables, x)
    np.testing.assert_allclose(evaluated, expected, rtol=1e-4, atol=1e-4)


STRIDED_BLOCKS = {"block1": (16, 16, 32), "block2": (8, 8, 64), "block3": (16, 16, 32),
                  "block4": (32, 32, 24)}


@pytest.mark.parametrize("name, convs, blocks", [
    # The newer edition's nets (NF 32, 24 colours, kernel 3, grey input): (in, out) per layer,
    # and each block's activations.
    ("pool_upsample", [(1, 32), (32, 64), (64, 32), (32, 24), (24, 24)],
     {"block1": (16, 16, 32), "block2": (8, 8, 64), "block4": (16, 16, 32),
      "block5": (32, 32, 24)}),
    ("conv_transpose", [(1, 32), (32, 64), (64, 32), (32, 24), (24, 24)], STRIDED_BLOCKS),
    ("unet_transpose", [(1, 32), (32, 64), (64, 32), (64, 24), (25, 24)], STRIDED_BLOCKS),
])
def test_newer_edition_shapes_and_parameter_counts(name, convs, blocks):
    model = build_model(ModelSpec(name, num_filters=32, kernel=3, num_outputs=24))
    variables = abstract_init(model, (2, 32, 32, 1))
    assert jax.eval_shape(model.apply, variables, jnp.zeros((2, 32, 32, 1))).shape == (
        2, 32, 32, 24)
    batchnorm = 2 * sum(cout for _, cout in convs[:-1])
    assert count(variables["params"]) == sum(conv_params(3, a, b) for a, b in convs) + batchnorm
    _, state = jax.eval_shape(lambda v, x: model.apply(v, x, mutable=["intermediates"]),
                              variables, jnp.zeros((2, 32, 32, 1)))
    assert {block: value["activations"][0].shape[1:]
            for block, value in state["intermediates"].items()} == blocks


def test_transposed_kernels_are_initialised_as_pytorch_does():
    """PyTorch's ConvTranspose2d draws U(±1/√(out·k²)): its fan-in is the output channels."""
    model = build_model(ModelSpec("conv_transpose", num_filters=16, kernel=3, num_outputs=24))
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))["params"]
    up, down = params["block3"]["kernel"], params["block2"]["kernel"]  # (3, 3, 32, 16), (…, 16, 32)
    assert float(jnp.abs(up).max()) == pytest.approx(1 / np.sqrt(16 * 9), rel=0.02)
    assert float(jnp.abs(down).max()) == pytest.approx(1 / np.sqrt(16 * 9), rel=0.02)
    assert float(jnp.abs(params["block4"]["kernel"]).max()) == pytest.approx(
        1 / np.sqrt(24 * 9), rel=0.02)


@pytest.mark.parametrize("name", ["cnn", "unet_transpose"])  # every kind of layer between them
def test_bfloat16_inputs_compute_in_bfloat16_with_float32_parameters_and_statistics(name):
    """Mixed precision: fed bfloat16, every layer computes in bfloat16 while the parameters,
    BatchNorm statistics and gradients stay float32, within bfloat16's rounding of float32."""
    model = build_model(ModelSpec(name, num_filters=8, kernel=3, num_outputs=5))
    x = jax.random.uniform(jax.random.key(0), (4, 16, 16, 1))
    variables = jax.jit(model.init)(jax.random.key(1), x)
    targets = jax.random.normal(jax.random.key(2), (4, 16, 16, 5))

    def loss(params, inputs):
        out, updates = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                   inputs, train=True, mutable=["batch_stats"])
        return jnp.mean((out.astype(jnp.float32) - targets) ** 2), (out, updates["batch_stats"])

    run = jax.jit(jax.value_and_grad(loss, has_aux=True))
    (full_loss, (full, full_stats)), full_grads = run(variables["params"], x)
    (half_loss, (half, half_stats)), half_grads = run(variables["params"],
                                                      x.astype(jnp.bfloat16))
    assert half.dtype == jnp.bfloat16
    assert {leaf.dtype.name for leaf in jax.tree.leaves((half_stats, half_grads))} == {"float32"}
    np.testing.assert_allclose(half_loss, full_loss, rtol=2e-2)
    assert relative_error(half, full) < 0.02
    for path, a in jax.tree_util.tree_leaves_with_path(half_stats):
        assert relative_error(a, _at(full_stats, path)) < 0.02, path
    # Whole-network gradients are sensitive at this size (rounding only the input to bfloat16
    # moves a float32 step's by several percent: max-pooling picks other maxima); each layer is
    # held to bfloat16's rounding in test_layers, and bfloat16 steps learn (test_loop).
    flat = [np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads)])
            for grads in (half_grads, full_grads)]
    assert relative_error(*flat) < 0.25
    evaluated = jax.jit(model.apply)(variables, x.astype(jnp.bfloat16))
    assert evaluated.dtype == jnp.bfloat16


def relative_error(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _at(tree, path):
    for key in path:
        tree = tree[key.key]
    return tree
