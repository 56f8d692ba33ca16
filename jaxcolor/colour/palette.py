"""Colour quantization: k-means over RGB pixels (in JAX) and nearest-colour labelling."""

from __future__ import annotations

import hashlib
import os
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

CACHE_DIR_ENV = "JAXCOLOR_CACHE_DIR"
KMEANS_VERSION = 1  # bump when the algorithm changes so stale cached colours are not reused


def to_unit_float(images: np.ndarray | jax.Array) -> jax.Array:
    """uint8 [0, 255] → float32 [0, 1]."""
    return jnp.asarray(images, jnp.float32) / 255.0


def _squared_distances(points: jax.Array, centres: jax.Array) -> jax.Array:
    """(P, 3), (K, 3) → (P, K) squared Euclidean distances, as one matmul."""
    return (
        jnp.sum(points**2, axis=-1, keepdims=True)
        - 2.0 * points @ centres.T
        + jnp.sum(centres**2, axis=-1)
    )


@jax.jit
def nearest_colour(pixels: jax.Array, centres: jax.Array) -> jax.Array:
    """Index of the nearest centre (Euclidean, RGB) for every pixel; shape ``pixels.shape[:-1]``."""
    flat = pixels.reshape(-1, pixels.shape[-1])
    labels = jnp.argmin(_squared_distances(flat, centres), axis=-1)
    return labels.astype(jnp.int32).reshape(pixels.shape[:-1])


# How a class distribution becomes one colour: the temperature of Zhang et al.'s (2016)
# "annealed mean". 0 = the most likely colour (mode), 1 = the expected colour (mean, which
# minimises squared RGB error but averages towards grey), 0.38 = Zhang's compromise.
RENDERING_TEMPERATURES = {"argmax": 0.0, "annealed_mean": 0.38, "expected": 1.0}


def render_colours(logits: jax.Array, palette: jax.Array, rendering: str = "argmax"
                   ) -> jax.Array:
    """(..., K) class logits, (K, 3) palette → (..., 3) RGB, decoded as ``rendering``."""
    if rendering not in RENDERING_TEMPERATURES:
        raise ValueError(f"unknown rendering {rendering!r}; choose from "
                         f"{', '.join(RENDERING_TEMPERATURES)}")
    return decode_colours(logits, palette, RENDERING_TEMPERATURES[rendering])


def decode_colours(logits: jax.Array, palette: jax.Array, temperature: float) -> jax.Array:
    """(..., K) class logits, (K, C) class colours → (..., C): the annealed mean at
    ``temperature`` (0: the most likely class's colour)."""
    palette = jnp.asarray(palette, jnp.float32)
    if temperature == 0.0:
        return palette[jnp.argmax(logits, axis=-1)]
    return jax.nn.softmax(jnp.asarray(logits, jnp.float32) / temperature, axis=-1) @ palette


@partial(jax.jit, static_argnames=("k", "max_iters"))
def fit_kmeans(points: jax.Array, key: jax.Array, k: int, max_iters: int = 100,
               tol: float = 1e-7) -> jax.Array:
    """k-means++ initialisation then Lloyd iterations until the centres stop moving.

    Returns (k, D) centres sorted by brightness so that label order does not depend on the init.
    An empty cluster keeps its previous centre.
    """
    num_points = points.shape[0]
    init_key, loop_key = jax.random.split(key)
    first = points[jax.random.randint(init_key, (), 0, num_points)]
    centres = jnp.zeros((k, points.shape[1]), points.dtype).at[0].set(first)
    min_dist = jnp.sum((points - first) ** 2, axis=-1)

    def add_centre(i, carry):
        centres, min_dist = carry
        choice = jax.random.choice(jax.random.fold_in(loop_key, i), num_points,
                                   p=min_dist / jnp.sum(min_dist))
        centres = centres.at[i].set(points[choice])
        min_dist = jnp.minimum(min_dist, jnp.sum((points - points[choice]) ** 2, axis=-1))
        return centres, min_dist

    centres, _ = jax.lax.fori_loop(1, k, add_centre, (centres, min_dist))

    def lloyd(carry):
        centres, _, iteration = carry
        labels = jnp.argmin(_squared_distances(points, centres), axis=-1)
        sums = jax.ops.segment_sum(points, labels, num_segments=k)
        counts = jax.ops.segment_sum(jnp.ones((num_points,), points.dtype), labels,
                                     num_segments=k)
        updated = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centres)
        shift = jnp.max(jnp.sum((updated - centres) ** 2, axis=-1))
        return updated, shift, iteration + 1

    def not_converged(carry):
        _, shift, iteration = carry
        return (shift > tol) & (iteration < max_iters)

    centres, _, _ = jax.lax.while_loop(not_converged, lloyd, (centres, jnp.inf, 0))
    return centres[jnp.argsort(jnp.sum(centres, axis=-1))]


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "jaxcolor")


# k-means fits at most this many pixels (a seeded sample beyond it): one CIFAR-10 class is 5.1M
# pixels and is fitted whole; all ten (51M) took 274 s whole on a 2-core CPU.
MAX_KMEANS_PIXELS = 1 << 23


def colour_palette(images: np.ndarray, k: int, seed: int, *, name: str = "colours",
                   cache_dir: Path | None = None, max_pixels: int = MAX_KMEANS_PIXELS
                   ) -> np.ndarray:
    """The k k-means colours (float32 [0, 1], shape (k, 3)) of a uint8 image set, cached on disk.

    Beyond ``max_pixels`` pixels, k-means fits a random sample of that many (seeded by ``seed``).
    The cache key is a digest of the pixels themselves plus k, seed, the sample size and algorithm
    version, so any change of source, category or subset recomputes, and nothing stale is ever
    reused.
    """
    digest = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]
    cache_dir = cache_dir or default_cache_dir()
    pixels = images.reshape(-1, images.shape[-1])
    sampled = len(pixels) > max_pixels
    sample_tag = f"-sample{max_pixels}" if sampled else ""
    path = cache_dir / f"{name}-k{k}-seed{seed}{sample_tag}-v{KMEANS_VERSION}-{digest}.npy"
    if path.exists():
        return np.load(path)
    if sampled:
        pixels = pixels[np.sort(np.random.default_rng(seed).choice(len(pixels), max_pixels,
                                                                   replace=False))]
    pixels = to_unit_float(pixels)
    centres = np.asarray(fit_kmeans(pixels, jax.random.key(seed), k=k))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, centres)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs recomputation
    return centres
