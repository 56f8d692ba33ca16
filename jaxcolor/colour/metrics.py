"""Image-quality metrics beyond pixel accuracy, in JAX, over float RGB images in [0, 1] (NHWC).

- PSNR on RGB (per image, then averaged; identical images give +inf) and SSIM (Wang et al.
  2004: 11×11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03, per channel): dm-pix's (they
  agreed with jaxcolor's own to 1e-7 SSIM / 4e-6 dB when it switched). SSIM's Gaussian blur is
  given to dm-pix as two matrix products, several times faster than its own vmapped 1-D
  convolutions on CPU (BENCHMARKS.md, "After training: quality metrics and gradient norms";
  the values agree within 1e-6: tests/colour);
- Hasler–Süsstrunk colourfulness (on the 0–255 scale; a grey image scores 0) and the AuC of the
  per-pixel ab-error CDF (CIE Lab via ``jaxcolor.colour.lab``) over thresholds 0–150, plain and
  class-rebalanced (Zhang, Isola & Efros 2016): jaxcolor's own, as no library computes them.
"""

from __future__ import annotations

import functools

import dm_pix as pix
import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colour.lab import CELL_COUNT, ab_cells, rgb_to_lab


@jax.jit
def psnr(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Per-image PSNR in dB for data range 1 (N,); +inf where the images are identical."""
    return pix.psnr(prediction, target)


SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # dm-pix's defaults


def _valid_gaussian(length: int) -> np.ndarray:
    """(length − 10, length): row i holds the normalised 11-tap Gaussian at columns i … i + 10,
    so a product with it is dm-pix's "valid" 1-D blur along an axis."""
    taps = np.exp(-0.5 * ((np.arange(SSIM_WINDOW) - SSIM_WINDOW // 2) / SSIM_SIGMA) ** 2)
    rows = length - SSIM_WINDOW + 1
    matrix = np.zeros((rows, length), np.float32)
    for row in range(rows):
        matrix[row, row:row + SSIM_WINDOW] = taps / taps.sum()
    return matrix


def _gaussian_blur(images: jax.Array) -> jax.Array:
    """The valid separable blur of (N, H, W, C) images along H and W, as matrix products."""
    height, width = images.shape[-3:-1]
    blurred = jnp.einsum("vh,...hwc->...vwc", _valid_gaussian(height), images,
                         precision="highest")
    return jnp.einsum("uw,...vwc->...vuc", _valid_gaussian(width), blurred, precision="highest")


@jax.jit
def ssim(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Per-image SSIM (N,), mean over valid 11×11 windows and over channels (data range 1).
    (Images smaller than the window keep dm-pix's own filter, whatever it makes of them.)"""
    fits = min(prediction.shape[-3:-1]) >= SSIM_WINDOW
    return pix.ssim(prediction, target, filter_fn=_gaussian_blur if fits else None)


@jax.jit
def colourfulness(images: jax.Array) -> jax.Array:
    """Hasler & Süsstrunk (2003) colourfulness per image (N,), on the 0–255 scale."""
    rgb = images * 255.0
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    spread = jnp.sqrt(jnp.var(rg, axis=(1, 2)) + jnp.var(yb, axis=(1, 2)))
    mean = jnp.sqrt(jnp.mean(rg, axis=(1, 2)) ** 2 + jnp.mean(yb, axis=(1, 2)) ** 2)
    return spread + 0.3 * mean


@functools.partial(jax.jit, static_argnames="rebalanced")
def ab_error_auc(prediction: jax.Array, target: jax.Array, rebalanced: bool = False
                 ) -> jax.Array:
    """Area under the CDF of per-pixel ab errors, thresholds 0, 1, …, 150, normalised to [0, 1].

    1.0 means every pixel's ab is exact; a prediction whose ab errors all exceed 150 scores 0.
    ``rebalanced``: each pixel weighs 1 / (how many pixels share its true ab cell, grid 10), so
    every colour present counts equally and rare saturated colours are not swamped by the
    common greys (Zhang et al.'s class-rebalanced AuC).
    """
    return _ab_auc(rgb_to_lab(prediction)[..., 1:], rgb_to_lab(target)[..., 1:], rebalanced)


def _ab_auc(predicted_ab: jax.Array, true_ab: jax.Array, rebalanced: bool) -> jax.Array:
    true_ab = true_ab.reshape(-1, 2)
    error = jnp.linalg.norm(predicted_ab.reshape(-1, 2) - true_ab, axis=-1)
    if rebalanced:
        cells = ab_cells(true_ab)
        weights = 1.0 / jnp.zeros(CELL_COUNT * CELL_COUNT).at[cells].add(1.0)[cells]
    else:
        weights = jnp.ones_like(error)
    # For an integer threshold t, error ≤ t exactly when ceil(error) ≤ t: a weighted histogram
    # of ceil(error) and its cumulative sum give the CDF at 0, 1, …, 150.
    bucket = jnp.minimum(jnp.ceil(error), 151.0).astype(jnp.int32)
    histogram = jnp.zeros(152).at[bucket].add(weights)
    cdf = jnp.cumsum(histogram)[:151] / jnp.sum(weights)
    return jnp.mean(cdf)


def delta_e(rgb_a: np.ndarray, rgb_b: np.ndarray) -> float:
    """CIE76 colour difference ΔE*ab between two sRGB colours in [0, 1]."""
    lab = np.asarray(rgb_to_lab(jnp.asarray(np.stack([rgb_a, rgb_b]), jnp.float32)))
    return float(np.linalg.norm(lab[0] - lab[1]))


def colourfulness_error(prediction: np.ndarray, target: np.ndarray) -> float:
    """Mean per-image |colourfulness(prediction) − colourfulness(target)| of a set (the
    ``colourfulness_error`` of :func:`image_quality`, without its other metrics)."""
    prediction, target = jnp.asarray(prediction), jnp.asarray(target)
    return float(jnp.mean(jnp.abs(colourfulness(prediction) - colourfulness(target))))


def image_quality(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Mean PSNR, SSIM, colourfulness (prediction, truth, and the mean per-image absolute
    difference) and ab-error AuC (%, plain and class-rebalanced) of a set."""
    return {name: float(value) for name, value in _image_quality(prediction, target).items()}


@jax.jit
def _image_quality(prediction: jax.Array, target: jax.Array) -> dict[str, jax.Array]:
    """:func:`image_quality` as one compiled program (each Lab conversion made once)."""
    predicted_colourfulness, true_colourfulness = colourfulness(prediction), colourfulness(target)
    predicted_ab, true_ab = rgb_to_lab(prediction)[..., 1:], rgb_to_lab(target)[..., 1:]
    return {
        "psnr": jnp.mean(psnr(prediction, target)),
        "ssim": jnp.mean(ssim(prediction, target)),
        "colourfulness": jnp.mean(predicted_colourfulness),
        "true_colourfulness": jnp.mean(true_colourfulness),
        # Per image, so that over- and under-saturated images do not cancel out.
        "colourfulness_error": jnp.mean(jnp.abs(predicted_colourfulness - true_colourfulness)),
        "ab_auc": 100.0 * _ab_auc(predicted_ab, true_ab, rebalanced=False),
        "ab_auc_rebalanced": 100.0 * _ab_auc(predicted_ab, true_ab, rebalanced=True),
    }
