"""Colour quantization: k-means over RGB pixels (in JAX) and nearest-colour labelling."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor import cache
from jaxcolor.errors import UserError

KMEANS_VERSION = 2  # bump when the algorithm changes so stale cached colours are not reused


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


# nearest_colour's pixels per chunk: the distances of a whole image set to the centres would
# be one array of pixels × colours; chunks stay in the cache, with the same labels and faster
# (BENCHMARKS.md, "k-means palette, cold").
LABEL_CHUNK = 4096


@jax.jit
def nearest_colour(pixels: jax.Array, centres: jax.Array) -> jax.Array:
    """Index of the nearest centre (Euclidean, RGB) for every pixel; shape ``pixels.shape[:-1]``.
    Pixels are float in [0, 1], or uint8 (read as :func:`to_unit_float` reads them)."""
    flat = pixels.reshape(-1, pixels.shape[-1])
    count = flat.shape[0]
    chunks = -(-count // LABEL_CHUNK)
    flat = jnp.pad(flat, ((0, chunks * LABEL_CHUNK - count), (0, 0)))

    def nearest(rows: jax.Array) -> jax.Array:
        if rows.dtype == jnp.uint8:
            rows = to_unit_float(rows)
        return jnp.argmin(_squared_distances(rows, centres), axis=-1).astype(jnp.int32)

    labels = jax.lax.map(nearest, flat.reshape(chunks, LABEL_CHUNK, -1))
    return labels.reshape(-1)[:count].reshape(pixels.shape[:-1])


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
def fit_kmeans(points: jax.Array, key: jax.Array, k: int, weights: jax.Array | None = None,
               max_iters: int = 100, tol: float = 1e-7) -> jax.Array:
    """k-means++ initialisation then Lloyd iterations until the centres stop moving, each point
    counted ``weights`` times (default once), e.g. colour cells weighted by their pixel counts.

    Returns (k, D) centres sorted by brightness so that label order does not depend on the init.
    An empty cluster keeps its previous centre. Cluster sums are one-hot matrix products (XLA:CPU
    runs scatter-adds over millions of points far slower).
    """
    num_points = points.shape[0]
    weights = jnp.ones((num_points,), points.dtype) if weights is None else weights
    init_key, loop_key = jax.random.split(key)
    first = points[jax.random.choice(init_key, num_points, p=weights / jnp.sum(weights))]
    centres = jnp.zeros((k, points.shape[1]), points.dtype).at[0].set(first)
    min_dist = jnp.sum((points - first) ** 2, axis=-1)

    def add_centre(i, carry):
        # Greedy k-means++ (as scikit-learn's): draw a few candidates ∝ weight · distance² and
        # keep the one that lowers the weighted objective most.
        centres, min_dist = carry
        mass = weights * min_dist
        candidates = jax.random.choice(jax.random.fold_in(loop_key, i), num_points,
                                       (2 + int(math.log(k)),), p=mass / jnp.sum(mass))
        distances = jnp.minimum(min_dist, jnp.sum(
            (points[None] - points[candidates][:, None]) ** 2, axis=-1))
        best = jnp.argmin(distances @ weights)
        return centres.at[i].set(points[candidates[best]]), distances[best]

    centres, _ = jax.lax.fori_loop(1, k, add_centre, (centres, min_dist))

    def lloyd(carry):
        centres, _, iteration = carry
        labels = jnp.argmin(_squared_distances(points, centres), axis=-1)
        membership = jax.nn.one_hot(labels, k, dtype=points.dtype) * weights[:, None]
        sums, counts = membership.T @ points, jnp.sum(membership, axis=0)
        updated = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centres)
        shift = jnp.max(jnp.sum((updated - centres) ** 2, axis=-1))
        return updated, shift, iteration + 1

    def not_converged(carry):
        _, shift, iteration = carry
        return (shift > tol) & (iteration < max_iters)

    centres, _, _ = jax.lax.while_loop(not_converged, lloyd, (centres, jnp.inf, 0))
    return centres[jnp.argsort(jnp.sum(centres, axis=-1))]


# Palette pixels are summarised on a grid of 2^6 levels per channel: each occupied cell by the
# exact mean colour and count of its pixels (a k-means coreset; `python benchmarks/palette.py`).
GRID_BITS = 6


def colour_cells(images: np.ndarray, bits: int = GRID_BITS) -> tuple[np.ndarray, np.ndarray]:
    """The occupied cells of a 2^bits-per-channel RGB grid over a uint8 image set: each cell's
    mean colour (float32 (C, 3) in [0, 1]) and pixel count (C,). k-means over the cells weighted
    by their counts sees every pixel at the cost of the cells (pixels of one cell are assigned
    together)."""
    pixels = images.reshape(-1, 3)
    codes = ((pixels[:, 0].astype(np.uint32) << 16) | (pixels[:, 1].astype(np.uint32) << 8)
             | pixels[:, 2])
    colour_counts = np.bincount(codes, minlength=1 << 24)  # every distinct colour, then cells
    colours = np.flatnonzero(colour_counts)
    weights = colour_counts[colours]
    channels = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=-1)
    cell = channels >> (8 - bits)
    cells = (cell[:, 0] << (2 * bits)) | (cell[:, 1] << bits) | cell[:, 2]
    counts = np.bincount(cells, weights=weights, minlength=1 << (3 * bits))
    occupied = np.flatnonzero(counts)
    sums = np.stack([np.bincount(cells, weights=weights * channels[:, c],
                                 minlength=1 << (3 * bits))[occupied] for c in range(3)], -1)
    means = sums / (255.0 * counts[occupied, None])
    return means.astype(np.float32), counts[occupied].astype(np.int64)


def colour_palette(images: np.ndarray, k: int, seed: int, *, name: str = "colours",
                   cache_dir: Path | None = None,
                   log: Callable[[str], None] = lambda line: None) -> np.ndarray:
    """The k k-means colours (float32 [0, 1], shape (k, 3)) of a uint8 RGB image set, cached on
    disk: k-means over its :func:`colour_cells` weighted by their pixel counts. ``log`` hears a
    line before a fit.

    The cache key is a digest of the pixels themselves plus k, seed and algorithm version, so any
    change of source, category or subset recomputes, and nothing stale is ever reused.
    """
    digest = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]
    cache_dir = cache_dir or cache.cache_dir()
    path = cache_dir / f"{name}-k{k}-seed{seed}-v{KMEANS_VERSION}-{digest}.npy"
    if path.exists():
        return np.load(path)
    means, counts = colour_cells(images)
    if k > len(means):
        raise UserError(f"--num_colours={k} is more than these images hold: their pixels fall in "
                        f"{len(means):,} cells of the colour grid; use at most that many.")
    log(f"palette: {k} k-means colours of {counts.sum():,} pixels ({len(means):,} colour cells)…")
    centres = np.asarray(fit_kmeans(jnp.asarray(means), jax.random.key(seed), k=k,
                                    weights=jnp.asarray(counts, jnp.float32)))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, centres)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs recomputation
    return centres
