"""Linear regression two ways (normal equations, gradient descent) and logistic regression by
gradient descent, on a design matrix whose first column is the bias's 1s."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np


def design_matrix(features: np.ndarray, mean: np.ndarray | None = None,
                  scale: np.ndarray | None = None) -> np.ndarray:
    """[1 | standardised features] (float64 NumPy); ``mean``/``scale`` default to the
    features' own (pass the training set's to standardise a test set the same way)."""
    mean = features.mean(axis=0) if mean is None else mean
    scale = features.std(axis=0) if scale is None else scale
    standard = (features - mean) / np.where(scale > 0, scale, 1.0)
    return np.concatenate([np.ones((len(features), 1)), standard], axis=1)


def normal_equations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The least-squares weights: the solution of XᵀX w = Xᵀy (float64)."""
    return np.linalg.solve(x.T @ x, x.T @ y)


def mean_squared_error(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """½ · mean((Xw − y)²): the cost both linear-regression methods minimise."""
    return 0.5 * jnp.mean((x @ w - y) ** 2)


def largest_stable_step(x: np.ndarray) -> float:
    """1 / L for L the largest eigenvalue of XᵀX/n, the cost's curvature: the largest
    gradient-descent step that decreases the quadratic cost in every direction monotonically."""
    return float(1.0 / np.linalg.eigvalsh(x.T @ x / len(x))[-1])


@partial(jax.jit, static_argnames="steps")
def linear_gradient_descent(x: jax.Array, y: jax.Array, learning_rate: float, steps: int
                            ) -> tuple[jax.Array, jax.Array]:
    """Weights after ``steps`` of w ← w − η·Xᵀ(Xw − y)/n from 0, and the cost before each step."""

    def step(w, _):
        return w - learning_rate * x.T @ (x @ w - y) / len(y), mean_squared_error(w, x, y)

    return jax.lax.scan(step, jnp.zeros(x.shape[1], x.dtype), None, length=steps)


def logistic_cost(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean cross-entropy of P(y = 1 | x) = σ(x·w) (computed from the logits, stably)."""
    logits = x @ w
    return jnp.mean(jax.nn.softplus(logits) - y * logits)


def logistic_gradient(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """The cost's gradient written out: Xᵀ(σ(Xw) − y) / n."""
    return x.T @ (jax.nn.sigmoid(x @ w) - y) / len(y)


@partial(jax.jit, static_argnames="steps")
def logistic_gradient_descent(x: jax.Array, y: jax.Array, learning_rate: float, steps: int
                              ) -> tuple[jax.Array, jax.Array]:
    """Weights after ``steps`` of gradient descent from 0, and the cost before each step."""

    def step(w, _):
        return w - learning_rate * logistic_gradient(w, x, y), logistic_cost(w, x, y)

    return jax.lax.scan(step, jnp.zeros(x.shape[1], x.dtype), None, length=steps)
