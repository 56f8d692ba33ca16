import socket

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.errors import UserError
from jaxcolor.scratch import datasets, network

SIZES = [6, 5, 4, 3]  # two hidden layers: BP2 runs twice


@pytest.fixture(scope="module")
def batch():
    keys = jax.random.split(jax.random.key(0), 3)
    params = network.init(SIZES, keys[0])
    x = jax.random.uniform(keys[1], (7, SIZES[0]))
    y = jax.nn.one_hot(jax.random.randint(keys[2], (7,), 0, SIZES[-1]), SIZES[-1])
    return params, x, y


def test_parameters_have_the_book_s_shapes(batch):
    params, _, _ = batch
    assert [(w.shape, b.shape) for w, b in params] == [((5, 6), (5,)), ((4, 5), (4,)),
                                                       ((3, 4), (3,))]


@pytest.mark.parametrize("form", list(network.GRADIENTS))
def test_hand_written_backprop_equals_autodiff(batch, form):
    params, x, y = batch
    ours = network.GRADIENTS[form](params, x, y)
    reference = jax.grad(network.quadratic_cost)(params, x, y)
    assert network.max_relative_error(ours, reference) < 1e-5


def test_one_example_backprop_is_the_gradient_of_its_own_cost(batch):
    params, x, y = batch
    ours = network.backprop_example(params, x[0], y[0])
    reference = jax.grad(network.quadratic_cost)(params, x[:1], y[:1])
    assert network.max_relative_error(ours, reference) < 1e-5


def test_sgd_learns_digits_in_both_forms_alike():
    """A few epochs of the book's SGD on scikit-learn's digits: well above chance, and the
    per-example and matrix forms take the same steps."""
    data = datasets.digits()
    assert data.train_x.shape == (1300, 64) and data.test_x.shape == (497, 64)
    assert data.train_x.min() >= 0.0 and data.train_x.max() <= 1.0
    x, y = jnp.asarray(data.train_x), jax.nn.one_hot(data.train_y, 10)
    start = network.init([64, 16, 10], jax.random.key(1))
    trained = {}
    for form in network.GRADIENTS:
        params = start
        for epoch in range(3):
            params = network.sgd_epoch(params, x, y, jax.random.key(epoch), 10, 3.0, form)
        trained[form] = params
    assert network.max_relative_error(trained["loop"], trained["matrix"]) < 1e-3
    accuracy = np.mean(np.asarray(network.predict(trained["matrix"], data.test_x))
                       == data.test_y)
    assert accuracy > 0.8


def test_mnist_is_prepared_by_tfds_from_its_download(tmp_path, monkeypatch):
    """tfds's real download and preparation of jaxcolor's MNIST builder, only the network
    replaced (tests/tfds_download.py)."""
    from tfds_download import mnist_files, serve

    from jaxcolor.scratch.mnist import JaxcolorMnist

    monkeypatch.setenv("JAXCOLOR_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    splits = {split: (rng.integers(0, 10, count, dtype=np.uint8),
                      rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
              for split, count in (("train", 12), ("test", 5))}
    with serve(JaxcolorMnist, mnist_files(splits)) as requested:
        data = datasets.mnist(str(tmp_path / "tfds"))
    assert len(requested) == 4
    np.testing.assert_array_equal(data.train_y, splits["train"][0])
    np.testing.assert_allclose(data.test_x * 255.0, splits["test"][1].reshape(5, -1), atol=1e-4)
    assert data.train_x.dtype == np.float32 and data.train_x.shape == (12, 784)
    assert data.side == 28


def test_mnist_offline_is_one_clear_error(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("JAXCOLOR_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="tfds cannot download MNIST.*--dataset=digits"):
        datasets.mnist(str(tmp_path))
