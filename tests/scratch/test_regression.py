import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.scratch import regression


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 4)) * [1.0, 3.0, 0.5, 2.0] + 5.0
    x = regression.design_matrix(features)
    return x, x @ np.array([2.0, -1.0, 0.5, 3.0, 0.0]) + 0.1 * rng.normal(size=200)


def test_design_matrix_is_a_bias_column_and_standardised_features(problem):
    x, _ = problem
    assert np.all(x[:, 0] == 1.0)
    np.testing.assert_allclose(x[:, 1:].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(x[:, 1:].std(axis=0), 1.0)


def test_gradient_descent_reaches_the_normal_equations_weights(problem):
    x, y = problem
    exact = regression.normal_equations(x, y)
    np.testing.assert_allclose(exact, np.linalg.lstsq(x, y, rcond=None)[0])
    weights, costs = regression.linear_gradient_descent(
        jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32),
        regression.largest_stable_step(x), 500)
    np.testing.assert_allclose(weights, exact, atol=1e-4)
    assert np.all(np.diff(np.asarray(costs)) <= 1e-6)  # 1/L: the cost never rises


def test_logistic_gradient_is_autodiff_s_and_descent_separates_the_classes(problem):
    x, y = problem
    labels = jnp.asarray(y > np.median(y), jnp.float32)
    x = jnp.asarray(x, jnp.float32)
    w = jnp.linspace(-0.5, 0.5, x.shape[1])
    np.testing.assert_allclose(regression.logistic_gradient(w, x, labels),
                               jax.grad(regression.logistic_cost)(w, x, labels), rtol=1e-5,
                               atol=1e-7)
    weights, costs = regression.logistic_gradient_descent(x, labels, 0.5, 300)
    assert costs[-1] < 0.3 < costs[0]
    assert float(jnp.mean((x @ weights > 0) == (labels > 0.5))) > 0.9
