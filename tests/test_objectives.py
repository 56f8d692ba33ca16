"""The per-pixel objectives against their library definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcolor.objectives import pixel_cross_entropy


def test_pixel_cross_entropy_equals_optax_in_values_and_gradients():
    """Large logits too (the log-sum-exp is shifted by the maximum): same values, and the
    gradient softmax − one-hot."""
    logits = jax.random.normal(jax.random.key(0), (2, 3, 5, 24)) * 4
    logits = logits.at[0, 0, 0].add(500.0)
    labels = jax.random.randint(jax.random.key(1), (2, 3, 5), 0, 24)
    weights = jax.random.uniform(jax.random.key(2), labels.shape)
    ours, theirs = (jax.value_and_grad(lambda z, loss=loss: jnp.sum(loss(z, labels) * weights))(
        logits) for loss in (pixel_cross_entropy, optax.softmax_cross_entropy_with_integer_labels))
    np.testing.assert_allclose(pixel_cross_entropy(logits, labels),
                               optax.softmax_cross_entropy_with_integer_labels(logits, labels),
                               rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-7)
    expected = (jax.nn.softmax(logits) - jax.nn.one_hot(labels, 24)) * weights[..., None]
    np.testing.assert_allclose(ours[1], expected, rtol=1e-5, atol=1e-7)
