"""CIE Lab colour science and Zhang-style ab quantization, in JAX (the Lab tasks' objectives
live in :mod:`jaxcolor.tasks.lab`).

Zhang, Isola & Efros (2016), "Colorful Image Colorization": predict a distribution over the
in-gamut bins of a 10-wide ab grid (313 for sRGB) from L; train on soft-encoded targets (the 5
nearest bins, Gaussian σ = 5) weighted by class rebalancing (the smoothed empirical bin
distribution mixed with uniform, λ = 0.5, weights of expectation 1); decode with the annealed
mean (softmax of log-probabilities / T; T = 1 the mean, T → 0 the mode, Zhang's T = 0.38).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colour.palette import decode_colours
from jaxcolor.errors import UserError
from jaxcolor.objectives import weights_for_distribution

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


# ab cells of a 10-wide grid are indexed (a // 10 + CELL_OFFSET, b // 10 + CELL_OFFSET) in a
# CELL_COUNT² table; sRGB's ab lie within ±128, so every cell fits.
CELL_OFFSET = 16
CELL_COUNT = 33


def ab_cells(ab: jax.Array, grid: float = 10.0) -> jax.Array:
    """ab (..., 2) → (...,) int32 index of the ``grid``-wide cell each lies in (rounded to the
    nearest centre): (round(a / grid) + 16) · 33 + round(b / grid) + 16."""
    cell = jnp.clip(jnp.round(ab / grid).astype(jnp.int32) + CELL_OFFSET, 0, CELL_COUNT - 1)
    return cell[..., 0] * CELL_COUNT + cell[..., 1]


@functools.cache
def ab_bins(grid: float = 10.0, levels: int = 256) -> np.ndarray:
    """The (Q, 2) centres of the ``grid``-wide ab bins that some sRGB colour falls in (every
    colour of a ``levels``³ sRGB cube, rounded to the nearest centre): 261 for grid 10.

    Zhang et al. publish 313 bins for the same grid; their list is not derivable from the
    sRGB gamut alone (tried here: rounding 261, cell flooring 268, centres inside the gamut's
    convex hull 233, cells touching it 269, Lab centres valid at some L 225–229)."""
    steps = jnp.linspace(0.0, 1.0, levels, dtype=jnp.float32)

    @jax.jit
    def occupied_cells() -> jax.Array:
        green, blue = jnp.meshgrid(steps, steps, indexing="ij")

        def add_red_level(occupied: jax.Array, red: jax.Array) -> tuple[jax.Array, None]:
            rgb = jnp.stack([jnp.broadcast_to(red, green.shape), green, blue], axis=-1)
            cells = ab_cells(rgb_to_lab(rgb)[..., 1:], grid).ravel()
            return occupied.at[cells].set(True), None

        empty = jnp.zeros(CELL_COUNT * CELL_COUNT, bool)
        return jax.lax.scan(add_red_level, empty, steps)[0]

    cells = np.flatnonzero(np.asarray(occupied_cells()))
    centres = np.stack([cells // CELL_COUNT, cells % CELL_COUNT], axis=-1) - CELL_OFFSET
    return (centres * grid).astype(np.float32)


def load_ab_bins(path: str, flag: str = "ab_bins_file") -> np.ndarray:
    """A (Q, 2) list of ab bin centres from a ``.npy`` file, e.g. Zhang et al.'s published
    ``pts_in_hull.npy`` (313 bins), checked to be distinct centres of the 10-wide grid (the
    quantization of Zhang et al. and of :func:`ab_bins`)."""
    try:
        bins = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UserError(f"--{flag}={path}: cannot read a .npy array ({err}).") from None
    if bins.ndim != 2 or bins.shape[1] != 2 or len(bins) < 2:
        raise UserError(f"--{flag}={path}: expected (Q, 2) ab bin centres, got shape "
                        f"{bins.shape}.")
    if not np.all(np.isfinite(bins)):
        raise UserError(f"--{flag}={path}: holds non-finite values.")
    centres = np.round(bins / 10.0)
    if (np.abs(bins - 10.0 * centres).max() > 1e-3
            or np.abs(centres).max() > CELL_OFFSET or len(np.unique(centres, axis=0)) < len(bins)):
        raise UserError(f"--{flag}={path}: bins must be distinct centres of the 10-wide ab grid "
                        f"(multiples of 10 within ±{10 * CELL_OFFSET}), as lab.ab_bins() and "
                        "Zhang et al.'s pts_in_hull.npy are.")
    return (10.0 * centres).astype(np.float32)


def nearest_bins(ab: jax.Array, bins: jax.Array, count: int) -> tuple[jax.Array, jax.Array]:
    """For each ab (..., 2): the squared distances (..., count) to its ``count`` nearest bins and
    their indices (..., count), nearest first."""
    negative, indices = jax.lax.top_k(-_squared_distances(ab, bins), count)
    return -negative, indices


def _squared_distances(ab: jax.Array, bins: jax.Array) -> jax.Array:
    """(..., Q) squared distances of each ab (..., 2) to the bins (Q, 2)."""
    return jnp.sum((ab[..., None, :] - bins) ** 2, axis=-1)


def sparse_soft_encode(ab: jax.Array, bins: jax.Array, neighbours: int = 5, sigma: float = 5.0
                       ) -> tuple[jax.Array, jax.Array]:
    """ab (..., 2) → the soft-encoded target as (weights, bin indices), each (..., neighbours):
    Gaussian (σ) weights, summing to 1, on the ``neighbours`` nearest bins, nearest first."""
    distances, indices = nearest_bins(ab, bins, neighbours)
    return jax.nn.softmax(-distances / (2.0 * sigma**2), axis=-1), indices


def soft_encode(ab: jax.Array, bins: jax.Array, neighbours: int = 5, sigma: float = 5.0
                ) -> jax.Array:
    """ab (..., 2) → (..., Q) target distributions: Gaussian (σ) weights on the ``neighbours``
    nearest bins, zero elsewhere, each row summing to 1."""
    weights, indices = sparse_soft_encode(ab, bins, neighbours, sigma)
    return jnp.sum(jax.nn.one_hot(indices, bins.shape[0], dtype=weights.dtype)
                   * weights[..., None], axis=-2)


def distinct_ab(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ab (..., 2) → its distinct values (D, 2) float32, each pixel's index into them (P,) and
    their counts (D,): photos repeat colours, so a search over the bins runs once per value."""
    pixels = np.ascontiguousarray(ab, np.float32).reshape(-1, 2)
    keys, inverse, counts = np.unique(pixels.view(np.int64)[:, 0], return_inverse=True,
                                      return_counts=True)
    return keys.view(np.float32).reshape(-1, 2), inverse.ravel(), counts


def map_in_chunks(fn: Callable[[jax.Array], jax.Array], pixels: np.ndarray,
                  chunk: int = 1 << 16) -> np.ndarray:
    """``fn`` over (P, 2) ``pixels``, a chunk at a time: their (chunk, Q) distances to the bins
    stay within tens of MB."""
    return np.concatenate([np.asarray(fn(jnp.asarray(pixels[start:start + chunk])))
                           for start in range(0, len(pixels), chunk)])


@jax.jit
def _nearest_bin(ab: jax.Array, bins: jax.Array) -> jax.Array:
    """Index of each ab's (P, 2) nearest bin (Q, 2)."""
    return jnp.argmin(_squared_distances(ab, bins), axis=-1)


def rebalancing_weights(ab: np.ndarray, bins: np.ndarray, mix: float = 0.5, sigma: float = 5.0
                        ) -> np.ndarray:
    """(Q,) per-bin loss weights ∝ 1 / ((1 − mix)·p̃ + mix/Q), where p̃ is the empirical
    distribution of the pixels' nearest bins smoothed by a Gaussian (σ) in ab space, scaled so
    that their expectation under p̃ is 1."""
    distinct, _, counts = distinct_ab(ab)
    nearest = map_in_chunks(functools.partial(_nearest_bin, bins=jnp.asarray(bins)), distinct)
    counts = np.bincount(nearest, weights=counts, minlength=len(bins))
    gaps = np.sum((bins[:, None, :] - bins[None, :, :]).astype(np.float64) ** 2, axis=-1)
    kernel = np.exp(-gaps / (2.0 * sigma**2))
    smoothed = kernel @ (counts / counts.sum())
    return weights_for_distribution(smoothed / smoothed.sum(), mix)


def annealed_mean(logits: jax.Array, bins: jax.Array, temperature: float) -> jax.Array:
    """(..., Q) bin logits → (..., 2) ab: the mean of the bins under softmax(logits / T), the
    annealed mean (T = 1: the distribution's mean; T → 0: its mode; T = 0: exactly the mode)."""
    return decode_colours(logits, bins, temperature)


@jax.jit
def compose_rgb(lightness: jax.Array, ab: jax.Array) -> jax.Array:
    """L (..., 1) in [0, 100] and ab (..., 2) → sRGB in [0, 1] (out-of-gamut colours clipped)."""
    return lab_to_rgb(jnp.concatenate([lightness, ab], axis=-1))
