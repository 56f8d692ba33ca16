import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.colour import palette as colours
from jaxcolor.errors import UserError


def test_kmeans_recovers_separated_clusters():
    rng = np.random.default_rng(0)
    true_centres = np.array([[0.1, 0.1, 0.1], [0.9, 0.1, 0.1], [0.1, 0.9, 0.1],
                             [0.1, 0.1, 0.9], [0.9, 0.9, 0.9]], np.float32)
    points = (true_centres[rng.integers(0, 5, 4000)]
              + rng.normal(0, 0.02, (4000, 3))).astype(np.float32)
    centres = np.asarray(colours.fit_kmeans(points, jax.random.key(3), k=5))
    distances = np.linalg.norm(centres[:, None] - true_centres[None], axis=-1)
    assert distances.min(axis=1).max() < 0.01  # every centre sits on a true cluster
    assert sorted(distances.argmin(axis=1)) == [0, 1, 2, 3, 4]  # and each cluster is found
    assert np.all(np.diff(centres.sum(axis=1)) >= 0)  # sorted by brightness


def test_kmeans_is_seeded():
    points = np.random.default_rng(1).random((2000, 3), dtype=np.float32)
    a = colours.fit_kmeans(points, jax.random.key(0), k=6)
    b = colours.fit_kmeans(points, jax.random.key(0), k=6)
    np.testing.assert_array_equal(a, b)


def test_nearest_colour_matches_brute_force_numpy():
    """Over more pixels than one chunk and not a multiple of it; uint8 pixels as their floats."""
    rng = np.random.default_rng(2)
    pixels = rng.random((3, 50, 40, 3), dtype=np.float32)
    assert pixels[..., 0].size % colours.LABEL_CHUNK != 0 and pixels[..., 0].size > \
        colours.LABEL_CHUNK
    palette = rng.random((24, 3), dtype=np.float32)
    brute = np.argmin(((pixels[..., None, :] - palette) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(np.asarray(colours.nearest_colour(pixels, palette)), brute)
    images = rng.integers(0, 256, (2, 40, 60, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        np.asarray(colours.nearest_colour(images, palette)),
        np.asarray(colours.nearest_colour(colours.to_unit_float(images), palette)))


def test_renderings_decode_the_colour_distribution():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(2, 3, 3, 24)).astype(np.float32)
    palette = rng.random((24, 3), dtype=np.float32)
    np.testing.assert_array_equal(colours.render_colours(logits, palette, "argmax"),
                                  palette[logits.argmax(-1)])
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(colours.render_colours(logits, palette, "expected"),
                               probs @ palette, rtol=1e-5, atol=1e-6)
    sharp = np.exp(logits / 0.38) / np.exp(logits / 0.38).sum(-1, keepdims=True)
    np.testing.assert_allclose(colours.render_colours(logits, palette, "annealed_mean"),
                               sharp @ palette, rtol=1e-5, atol=1e-6)
    # A confident distribution renders as its mode whatever the temperature.
    confident = 100.0 * np.eye(24, dtype=np.float32)[[3, 7]]
    for rendering in colours.RENDERING_TEMPERATURES:
        np.testing.assert_allclose(colours.render_colours(confident, palette, rendering),
                                   palette[[3, 7]], atol=1e-5)
    with pytest.raises(ValueError, match="unknown rendering 'median'"):
        colours.render_colours(logits, palette, "median")


def test_palette_is_cached_by_content(tmp_path):
    images = (np.random.default_rng(3).random((4, 8, 8, 3)) * 255).astype(np.uint8)
    first = colours.colour_palette(images, 4, seed=0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    np.testing.assert_array_equal(first, colours.colour_palette(images, 4, seed=0,
                                                                cache_dir=tmp_path))
    colours.colour_palette(images[:2], 4, seed=0, cache_dir=tmp_path)  # other pixels: new entry
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_rebalancing_weights_have_expectation_one_and_favour_rare_classes():
    from jaxcolor.objectives import rebalancing_weights

    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    weights = rebalancing_weights(labels, 4)
    frequency = np.bincount(labels, minlength=4) / len(labels)
    assert np.sum(frequency * weights) == pytest.approx(1.0, rel=1e-6)
    assert weights[0] < weights[1] < weights[2] < weights[3]  # unseen class weighs most


def test_colour_cells_hold_the_exact_mean_colour_and_count_of_their_pixels():
    images = (np.random.default_rng(4).random((6, 8, 8, 3)) * 256).astype(np.uint8)
    means, counts = colours.colour_cells(images, bits=2)  # 4 levels: cells of 64 values
    pixels = images.reshape(-1, 3)
    cells = [tuple(cell) for cell in pixels >> 6]
    expected = {cell: pixels[[c == cell for c in cells]].mean(axis=0) / 255.0
                for cell in sorted(set(cells))}
    np.testing.assert_allclose(means, np.array(list(expected.values())), rtol=1e-6)
    assert counts.sum() == len(pixels) and len(counts) == len(expected)


def test_weights_count_points_as_repeated():
    points = jnp.asarray([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    centre = colours.fit_kmeans(points, jax.random.key(0), k=1, weights=jnp.asarray([3.0, 1.0]))
    np.testing.assert_allclose(centre, [[0.25, 0.25, 0.25]], rtol=1e-6)


def test_palette_fits_the_colour_cells_weighted_by_pixel_count(tmp_path):
    images = (np.random.default_rng(4).random((6, 8, 8, 3)) * 256).astype(np.uint8)
    lines = []
    palette = colours.colour_palette(images, 4, seed=1, cache_dir=tmp_path, log=lines.append)
    means, counts = colours.colour_cells(images)
    expected = colours.fit_kmeans(jnp.asarray(means), jax.random.key(1), k=4,
                                  weights=jnp.asarray(counts, jnp.float32))
    np.testing.assert_array_equal(palette, np.asarray(expected))
    assert lines == [f"palette: 4 k-means colours of 384 pixels ({len(means)} colour cells)…"]
    # Cached: no second fit, no second line.
    again = colours.colour_palette(images, 4, seed=1, cache_dir=tmp_path, log=lines.append)
    np.testing.assert_array_equal(again, palette)
    assert len(lines) == 1


def test_more_colours_than_the_images_hold_is_one_clear_line(tmp_path):
    two_colours = np.zeros((2, 4, 4, 3), np.uint8)
    two_colours[1] = 255
    with pytest.raises(UserError, match="--num_colours=3 is more than these images hold: .* 2 "
                                        "cells"):
        colours.colour_palette(two_colours, 3, seed=0, cache_dir=tmp_path)
