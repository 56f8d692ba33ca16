"""CIE Lab colour science and Zhang-style ab quantization, in JAX.

Zhang, Isola & Efros (2016), "Colorful Image Colorization": predict a distribution over the
in-gamut bins of a 10-wide ab grid (313 for sRGB) from L; train on soft-encoded targets (the 5
nearest bins, Gaussian σ = 5) weighted by class rebalancing (the smoothed empirical bin
distribution mixed with uniform, λ = 0.5, weights of expectation 1); decode with the annealed
mean (softmax of log-probabilities / T; T = 1 the mean, T → 0 the mode, Zhang's T = 0.38).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.objectives import Objective, weights_for_distribution

# sRGB (D65) → XYZ, and the D65 white point: the constants scikit-image uses.
RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                       [0.212671, 0.715160, 0.072169],
                       [0.019334, 0.119193, 0.950227]], np.float64)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
D65_WHITE = np.array([0.95047, 1.0, 1.08883], np.float64)
_EPSILON = 0.008856  # (6/29)³: where CIE's cube root turns linear
_KAPPA = 7.787


@jax.jit
def rgb_to_lab(rgb: jax.Array) -> jax.Array:
    """sRGB in [0, 1] (..., 3) → CIE Lab (D65): L in [0, 100], a and b roughly in [-128, 127]."""
    linear = jnp.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = (linear @ RGB_TO_XYZ.T.astype(np.float32)) / D65_WHITE.astype(np.float32)
    f = jnp.where(xyz > _EPSILON, jnp.cbrt(xyz), _KAPPA * xyz + 16.0 / 116.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


@jax.jit
def lab_to_rgb(lab: jax.Array) -> jax.Array:
    """CIE Lab (D65) (..., 3) → sRGB, clipped to [0, 1] (out-of-gamut Lab has no exact sRGB)."""
    fy = (lab[..., 0] + 16.0) / 116.0
    f = jnp.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = jnp.where(f > _EPSILON ** (1 / 3), f**3, (f - 16.0 / 116.0) / _KAPPA)
    linear = (xyz * D65_WHITE.astype(np.float32)) @ XYZ_TO_RGB.T.astype(np.float32)
    linear = jnp.clip(linear, 0.0, None)
    rgb = jnp.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)
    return jnp.clip(rgb, 0.0, 1.0)


@functools.cache
def ab_bins(grid: float = 10.0, levels: int = 256) -> np.ndarray:
    """The (Q, 2) centres of the ``grid``-wide ab bins that some sRGB colour falls in (every
    colour of a ``levels``³ sRGB cube, rounded to the nearest centre): 261 for grid 10.

    Zhang et al. publish 313 bins for the same grid; their list is not derivable from the
    sRGB gamut alone (tried here: rounding 261, cell flooring 268, centres inside the gamut's
    convex hull 233, cells touching it 269, Lab centres valid at some L 225–229)."""
    steps = jnp.linspace(0.0, 1.0, levels, dtype=jnp.float32)

    @jax.jit
    def slab_cells(red: jax.Array) -> jax.Array:  # the rounded ab of one red level's colours
        green, blue = jnp.meshgrid(steps, steps, indexing="ij")
        rgb = jnp.stack([jnp.broadcast_to(red, green.shape), green, blue], axis=-1)
        return jnp.round(rgb_to_lab(rgb)[..., 1:] / grid).astype(jnp.int32).reshape(-1, 2)

    cells = np.concatenate([np.unique(np.asarray(slab_cells(red)), axis=0) for red in steps])
    return np.unique(cells, axis=0).astype(np.float32) * grid


def nearest_bins(ab: jax.Array, bins: jax.Array, count: int) -> tuple[jax.Array, jax.Array]:
    """For each ab (..., 2): the squared distances (..., count) to its ``count`` nearest bins and
    their indices (..., count), nearest first."""
    distances = jnp.sum((ab[..., None, :] - bins) ** 2, axis=-1)
    negative, indices = jax.lax.top_k(-distances, count)
    return -negative, indices


def soft_encode(ab: jax.Array, bins: jax.Array, neighbours: int = 5, sigma: float = 5.0
                ) -> jax.Array:
    """ab (..., 2) → (..., Q) target distributions: Gaussian (σ) weights on the ``neighbours``
    nearest bins, zero elsewhere, each row summing to 1."""
    distances, indices = nearest_bins(ab, bins, neighbours)
    weights = jax.nn.softmax(-distances / (2.0 * sigma**2), axis=-1)
    return jnp.sum(jax.nn.one_hot(indices, bins.shape[0], dtype=weights.dtype)
                   * weights[..., None], axis=-2)


def rebalancing_weights(ab: np.ndarray, bins: np.ndarray, mix: float = 0.5, sigma: float = 5.0
                        ) -> np.ndarray:
    """(Q,) per-bin loss weights ∝ 1 / ((1 − mix)·p̃ + mix/Q), where p̃ is the empirical
    distribution of the pixels' nearest bins smoothed by a Gaussian (σ) in ab space, scaled so
    that their expectation under p̃ is 1."""
    _, nearest = nearest_bins(jnp.asarray(ab, jnp.float32).reshape(-1, 2), jnp.asarray(bins), 1)
    counts = np.bincount(np.asarray(nearest).ravel(), minlength=len(bins)).astype(np.float64)
    gaps = np.sum((bins[:, None, :] - bins[None, :, :]).astype(np.float64) ** 2, axis=-1)
    kernel = np.exp(-gaps / (2.0 * sigma**2))
    smoothed = kernel @ (counts / counts.sum())
    return weights_for_distribution(smoothed / smoothed.sum(), mix)


def annealed_mean(logits: jax.Array, bins: jax.Array, temperature: float) -> jax.Array:
    """(..., Q) bin logits → (..., 2) ab: the mean of the bins under softmax(logits / T), the
    annealed mean (T = 1: the distribution's mean; T → 0: its mode; T = 0: exactly the mode)."""
    if temperature == 0.0:
        return jnp.asarray(bins)[jnp.argmax(logits, axis=-1)]
    return jax.nn.softmax(logits / temperature, axis=-1) @ jnp.asarray(bins)


def soft_encoded_objective(bins: np.ndarray, class_weights: np.ndarray | None = None
                           ) -> Objective:
    """Zhang et al.'s per-pixel loss over (N, H, W, Q) bin logits and (N, H, W, 2) ab targets:
    cross-entropy against the soft-encoded target, times the rebalancing weight of the target's
    nearest bin (``class_weights``, e.g. :func:`rebalancing_weights`; None = 1). Metric:
    ``accuracy``, the share of pixels whose most likely bin is the target's nearest."""
    bins = jnp.asarray(bins, jnp.float32)
    weights = None if class_weights is None else jnp.asarray(class_weights, jnp.float32)

    def loss(logits: jax.Array, ab: jax.Array) -> jax.Array:
        target = soft_encode(ab, bins)
        cross_entropy = -jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1)
        if weights is None:
            return cross_entropy
        return weights[jnp.argmax(target, axis=-1)] * cross_entropy

    def metrics(logits: jax.Array, ab: jax.Array) -> dict[str, jax.Array]:
        nearest = nearest_bins(ab, bins, 1)[1][..., 0]
        return {"accuracy": (jnp.argmax(logits, axis=-1) == nearest).astype(jnp.float32)}

    return Objective("lab_bins", loss, metrics)
