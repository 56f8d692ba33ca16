"""Nielsen's network ("Neural Networks and Deep Learning", chapters 1–2): fully connected
sigmoid layers, the quadratic cost, mini-batch stochastic gradient descent, and gradients from
the four equations of backpropagation written out — per example, as in the book's
``backprop``, and for a whole mini-batch at once (its matrix-based form). ``jax.grad`` of the
same cost is the check, not the method.

Parameters are a list of (W, b) per layer, W of shape (n_out, n_in) as in the book; inputs and
activations are rows (examples × units) in the mini-batch form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import jax
import jax.numpy as jnp

Params = list[tuple[jax.Array, jax.Array]]


def init(sizes: Sequence[int], key: jax.Array) -> Params:
    """Weights and biases drawn from N(0, 1), the book's initialisation."""
    keys = jax.random.split(key, 2 * (len(sizes) - 1))
    return [(jax.random.normal(keys[2 * i], (n_out, n_in)),
             jax.random.normal(keys[2 * i + 1], (n_out,)))
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))]


def sigmoid_prime(z: jax.Array) -> jax.Array:
    """σ'(z) = σ(z)(1 − σ(z))."""
    s = jax.nn.sigmoid(z)
    return s * (1.0 - s)


def feedforward(params: Params, x: jax.Array) -> jax.Array:
    """a = σ(W a + b) layer by layer, for rows of inputs x."""
    for w, b in params:
        x = jax.nn.sigmoid(x @ w.T + b)
    return x


def quadratic_cost(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """C = 1/(2n) Σ_x ‖y(x) − a^L(x)‖² over the rows of x and one-hot targets y."""
    return 0.5 * jnp.mean(jnp.sum((feedforward(params, x) - y) ** 2, axis=-1))


def backprop_example(params: Params, x: jax.Array, y: jax.Array) -> Params:
    """∇C_x for one example (vectors x, y), C_x = ½‖y − a^L‖²:
    BP1 δ^L = (a^L − y) ⊙ σ'(z^L); BP2 δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l);
    BP3 ∂C/∂b^l = δ^l; BP4 ∂C/∂W^l = δ^l (a^{l−1})ᵀ."""
    activations, zs = [x], []
    for w, b in params:
        zs.append(w @ activations[-1] + b)
        activations.append(jax.nn.sigmoid(zs[-1]))
    delta = (activations[-1] - y) * sigmoid_prime(zs[-1])  # BP1
    grads = [None] * len(params)
    for layer in range(len(params) - 1, -1, -1):
        if layer < len(params) - 1:
            delta = (params[layer + 1][0].T @ delta) * sigmoid_prime(zs[layer])  # BP2
        grads[layer] = (jnp.outer(delta, activations[layer]), delta)  # BP4, BP3
    return grads


def backprop_loop(params: Params, x: jax.Array, y: jax.Array) -> Params:
    """The mini-batch's mean gradient as the book computes it: one example at a time (a loop
    over the rows, compiled as ``lax.scan``), the per-example gradients summed."""
    zero = jax.tree.map(jnp.zeros_like, params)

    def add(total, example):
        return jax.tree.map(jnp.add, total, backprop_example(params, *example)), None

    total, _ = jax.lax.scan(add, zero, (x, y))
    return jax.tree.map(lambda g: g / len(x), total)


def backprop_matrix(params: Params, x: jax.Array, y: jax.Array) -> Params:
    """The same mean gradient for the whole mini-batch at once: BP1–BP4 with matrices whose rows
    are the examples (BP4 sums δᵀ a over the rows as one product)."""
    activations, zs = [x], []
    for w, b in params:
        zs.append(activations[-1] @ w.T + b)
        activations.append(jax.nn.sigmoid(zs[-1]))
    delta = (activations[-1] - y) * sigmoid_prime(zs[-1])  # BP1, one row per example
    grads = [None] * len(params)
    for layer in range(len(params) - 1, -1, -1):
        if layer < len(params) - 1:
            delta = (delta @ params[layer + 1][0]) * sigmoid_prime(zs[layer])  # BP2
        grads[layer] = (delta.T @ activations[layer] / len(x), delta.mean(axis=0))  # BP4, BP3
    return grads


GRADIENTS: dict[str, Callable[[Params, jax.Array, jax.Array], Params]] = {
    "loop": backprop_loop, "matrix": backprop_matrix}


def max_relative_error(ours: Params, reference: Params) -> float:
    """max over parameter arrays of max|ours − reference| / max|reference|."""
    errors = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)),
                          ours, reference)
    return float(max(jax.tree.leaves(errors)))


@partial(jax.jit, static_argnames=("batch_size", "form"))
def sgd_epoch(params: Params, x: jax.Array, y: jax.Array, key: jax.Array, batch_size: int,
              learning_rate: float, form: str = "matrix") -> Params:
    """One epoch of mini-batch SGD: the rows shuffled by ``key`` and cut into mini-batches (a
    last partial one is dropped), each a step w ← w − η·∇C of its mean gradient computed by
    ``form`` ("loop" or "matrix")."""
    batches = len(x) // batch_size
    order = jax.random.permutation(key, len(x))[:batches * batch_size].reshape(batches, -1)

    def step(params, rows):
        grads = GRADIENTS[form](params, x[rows], y[rows])
        return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads), None

    return jax.lax.scan(step, params, order)[0]


@jax.jit
def predict(params: Params, x: jax.Array) -> jax.Array:
    """The class of each row: the output neuron with the largest activation."""
    return jnp.argmax(feedforward(params, x), axis=-1)
