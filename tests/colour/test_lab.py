import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import zhang_sized_bins

from jaxcolor.colour import lab
from jaxcolor.errors import UserError

skimage = pytest.importorskip("skimage")
from skimage.color import lab2rgb, rgb2lab  # noqa: E402


@pytest.fixture(scope="module")
def rgb():
    return np.random.default_rng(0).random((4, 16, 16, 3)).astype(np.float32)


def test_lab_matches_scikit_image_both_ways(rgb):
    ours = np.asarray(lab.rgb_to_lab(rgb))
    np.testing.assert_allclose(ours, rgb2lab(rgb), atol=1e-3)
    lab_values = rgb2lab(rgb).astype(np.float32)
    np.testing.assert_allclose(np.asarray(lab.lab_to_rgb(lab_values)), lab2rgb(lab_values),
                               atol=1e-3)


def test_lab_round_trip(rgb):
    np.testing.assert_allclose(np.asarray(lab.lab_to_rgb(lab.rgb_to_lab(rgb))), rgb, atol=1e-4)
    grey = np.full((5, 3), 0.5, np.float32)
    np.testing.assert_allclose(np.asarray(lab.rgb_to_lab(grey))[:, 1:], 0.0, atol=5e-3)


def test_ab_bins_cover_the_srgb_gamut():
    bins = lab.ab_bins()
    assert bins.shape == (261, 2)  # Zhang et al.'s list has 313; see ab_bins's docstring
    assert np.all(bins % 10 == 0) and [0.0, 0.0] in bins.tolist()
    # Every sRGB colour lies within half a cell (in a and b) of a bin centre.
    rgb = np.random.default_rng(1).random((20000, 3)).astype(np.float32)
    ab = np.asarray(lab.rgb_to_lab(rgb))[:, 1:]
    gap = np.abs(ab[:, None, :] - bins[None]).max(-1).min(-1)
    assert gap.max() <= 5.0 + 1e-3


def test_soft_encoding_puts_gaussian_mass_on_five_nearest_bins():
    bins = jnp.asarray(lab.ab_bins())
    ab = jax.random.uniform(jax.random.key(0), (3, 7, 2), minval=-40, maxval=40)
    encoded = np.asarray(lab.soft_encode(ab, bins))
    assert encoded.shape == (3, 7, len(bins))
    np.testing.assert_allclose(encoded.sum(-1), 1.0, rtol=1e-5)
    assert np.all((encoded > 0).sum(-1) == 5)
    # The heaviest bin is the nearest one; a bin centre gets most of its own mass.
    distances = np.sum((np.asarray(ab)[..., None, :] - np.asarray(bins)) ** 2, -1)
    assert np.array_equal(encoded.argmax(-1), distances.argmin(-1))
    centre = np.asarray(lab.soft_encode(bins[:1], bins))[0]
    assert centre[0] == centre.max() and centre[0] > 0.4


def test_rebalancing_weights_have_expectation_one_and_favour_rare_bins():
    bins = lab.ab_bins()
    rng = np.random.default_rng(0)
    # Mostly grey pixels, a few saturated ones.
    ab = np.concatenate([rng.normal(0, 3, (5000, 2)), rng.normal(60, 3, (100, 2))]).astype(
        np.float32)
    weights = lab.rebalancing_weights(ab, bins)
    _, nearest = lab.nearest_bins(jnp.asarray(ab), jnp.asarray(bins), 1)
    gaps = np.sum((bins[:, None] - bins[None]) ** 2, -1)
    smoothed = np.exp(-gaps / 50.0) @ np.bincount(np.asarray(nearest).ravel(), minlength=len(bins))
    smoothed /= smoothed.sum()
    assert np.sum(smoothed * weights) == pytest.approx(1.0, rel=1e-5)
    grey, saturated = (int(np.argmin(np.sum((bins - c) ** 2, -1))) for c in ([0, 0], [60, 60]))
    assert weights[saturated] > weights[grey]


def test_annealed_mean_is_the_mean_at_one_and_tends_to_the_mode():
    bins = jnp.asarray(lab.ab_bins())
    logits = jax.random.normal(jax.random.key(1), (6, len(bins))) * 2.0
    mean = jax.nn.softmax(logits, -1) @ bins
    np.testing.assert_allclose(np.asarray(lab.annealed_mean(logits, bins, 1.0)), mean,
                               rtol=1e-5, atol=1e-4)
    mode = np.asarray(bins)[np.argmax(np.asarray(logits), -1)]
    np.testing.assert_allclose(np.asarray(lab.annealed_mean(logits, bins, 0.01)), mode,
                               atol=1e-2)
    np.testing.assert_array_equal(np.asarray(lab.annealed_mean(logits, bins, 0.0)), mode)
    gap = [float(np.abs(np.asarray(lab.annealed_mean(logits, bins, t)) - mode).mean())
           for t in (1.0, 0.38, 0.1)]
    assert gap[0] > gap[1] > gap[2]


def test_load_ab_bins_accepts_a_313_bin_grid_list(tmp_path):
    path = tmp_path / "pts_in_hull.npy"
    np.save(path, zhang_sized_bins().astype(np.float64))  # Zhang's file holds float64
    bins = lab.load_ab_bins(str(path))
    assert bins.shape == (313, 2) and bins.dtype == np.float32
    np.testing.assert_array_equal(bins, zhang_sized_bins())


@pytest.mark.parametrize("contents, message", [
    (None, "cannot read a .npy array"),
    (np.zeros((5, 3)), "expected (Q, 2) ab bin centres, got shape (5, 3)"),
    (np.array([[0.0, 0.0], [np.nan, 10.0]]), "non-finite"),
    (np.array([[0.0, 0.0], [5.0, 10.0]]), "distinct centres of the 10-wide ab grid"),
    (np.array([[0.0, 0.0], [0.0, 0.0]]), "distinct centres of the 10-wide ab grid"),
    (np.array([[0.0, 0.0], [0.0, 990.0]]), "distinct centres of the 10-wide ab grid"),
])
def test_load_ab_bins_names_the_flag_and_the_problem(tmp_path, contents, message):
    path = tmp_path / "bins.npy"
    if contents is None:
        path.write_text("not numpy")
    else:
        np.save(path, contents)
    with pytest.raises(UserError, match=re.escape(f"--ab_bins_file={path}: ") + ".*"
                       + re.escape(message)):
        lab.load_ab_bins(str(path))


def test_distinct_ab_and_chunks_give_back_every_pixel():
    ab = np.array([[[1.5, -2.0], [0.0, 3.0]], [[1.5, -2.0], [7.0, 7.0]]], np.float32)
    distinct, inverse, counts = lab.distinct_ab(ab)
    assert len(distinct) == 3 and counts.sum() == 4 and counts.max() == 2
    np.testing.assert_array_equal(distinct[inverse].reshape(ab.shape), ab)
    doubled = lab.map_in_chunks(lambda chunk: 2.0 * chunk, distinct, chunk=2)  # 2 chunks
    np.testing.assert_array_equal(doubled, 2.0 * distinct)
