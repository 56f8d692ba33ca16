import dm_pix as pix
import numpy as np
import pytest

from jaxcolor.colour import lab, metrics

skimage = pytest.importorskip("skimage")
from skimage.metrics import structural_similarity  # noqa: E402


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    x = rng.random((3, 32, 32, 3)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
    return x, y


def test_ssim_matches_scikit_image(pair):
    x, y = pair
    expected = [structural_similarity(x[i], y[i], channel_axis=-1, gaussian_weights=True,
                                      sigma=1.5, use_sample_covariance=False, data_range=1.0)
                for i in range(len(x))]
    np.testing.assert_allclose(np.asarray(metrics.ssim(x, y)), expected, atol=1e-4)
    np.testing.assert_allclose(np.asarray(metrics.ssim(x, x)), 1.0, atol=1e-5)


def test_ssim_blur_as_matrix_products_equals_dm_pix_own_filter(pair):
    x, y = pair
    wide = np.pad(x, ((0, 0), (0, 0), (0, 5), (0, 0)), mode="reflect")  # H ≠ W
    for a, b in ((x, y), (wide, np.clip(wide + 0.05, 0, 1))):
        np.testing.assert_allclose(np.asarray(metrics.ssim(a, b)),
                                   np.asarray(pix.ssim(a, b)), rtol=0, atol=1e-6)


def test_image_quality_is_the_mean_of_each_metric(pair):
    x, y = pair
    quality = metrics.image_quality(x, y)
    assert quality["psnr"] == pytest.approx(float(np.mean(metrics.psnr(x, y))), rel=1e-6)
    assert quality["ssim"] == pytest.approx(float(np.mean(metrics.ssim(x, y))), rel=1e-6)
    assert quality["ab_auc"] == pytest.approx(100 * float(metrics.ab_error_auc(x, y)), rel=1e-6)
    assert quality["ab_auc_rebalanced"] == pytest.approx(
        100 * float(metrics.ab_error_auc(x, y, rebalanced=True)), rel=1e-6)


def test_psnr_known_values_and_identical_images(pair):
    x, _ = pair
    assert np.all(np.isinf(np.asarray(metrics.psnr(x, x))))
    shifted = np.clip(x, 0.1, 0.9)
    noisy = shifted + 0.1  # MSE = 0.01 → 20 dB
    np.testing.assert_allclose(np.asarray(metrics.psnr(noisy, shifted)), 20.0, atol=1e-3)


def test_colourfulness_of_grey_is_zero_and_grows_with_saturation():
    grey = np.repeat(np.random.default_rng(1).random((2, 16, 16, 1), np.float32), 3, -1)
    np.testing.assert_allclose(np.asarray(metrics.colourfulness(grey)), 0.0, atol=1e-3)
    red = np.zeros((1, 16, 16, 3), np.float32)
    red[..., 0] = 1.0
    # rg = 255, yb = 127.5, no spread: C = 0.3 * sqrt(255² + 127.5²)
    np.testing.assert_allclose(np.asarray(metrics.colourfulness(red)),
                               0.3 * np.hypot(255.0, 127.5), rtol=1e-5)


def test_ab_auc_bounds(pair):
    x, y = pair
    assert float(metrics.ab_error_auc(x, x)) == pytest.approx(1.0)
    assert 0.0 < float(metrics.ab_error_auc(x, y)) < 1.0
    green = np.zeros((1, 4, 4, 3), np.float32)
    green[..., 1] = 1.0
    magenta = 1.0 - green  # ab distance ≈ 200 > 150 everywhere
    assert float(metrics.ab_error_auc(green, magenta)) == pytest.approx(0.0)


def _direct_auc(prediction, target, pixel_weights=None):
    """The AuC by its definition: the weighted share of errors ≤ t, averaged over t = 0..150."""
    error = np.linalg.norm(np.asarray(lab.rgb_to_lab(prediction))[..., 1:]
                           - np.asarray(lab.rgb_to_lab(target))[..., 1:], axis=-1).ravel()
    w = np.ones_like(error) if pixel_weights is None else pixel_weights
    return np.mean([np.sum(w * (error <= t)) / np.sum(w) for t in range(151)])


def test_ab_auc_equals_its_definition_plain_and_rebalanced(pair):
    x, y = pair
    assert float(metrics.ab_error_auc(x, y)) == pytest.approx(_direct_auc(x, y), abs=1e-5)
    cells = np.asarray(lab.ab_cells(lab.rgb_to_lab(y)[..., 1:])).ravel()
    counts = np.bincount(cells)
    assert float(metrics.ab_error_auc(x, y, rebalanced=True)) == pytest.approx(
        _direct_auc(x, y, 1.0 / counts[cells]), abs=1e-5)


def test_rebalanced_auc_counts_rare_colours_as_much_as_common_ones():
    truth = np.full((1, 10, 10, 3), 0.5, np.float32)  # 99 grey pixels predicted exactly …
    truth[0, 0, 0] = [1.0, 0.0, 0.0]  # … and one red pixel predicted grey
    prediction = np.full_like(truth, 0.5)
    plain = float(metrics.ab_error_auc(prediction, truth))
    rebalanced = float(metrics.ab_error_auc(prediction, truth, rebalanced=True))
    assert plain > 0.95
    assert rebalanced == pytest.approx((1.0 + _direct_auc(prediction[:, :1, :1],
                                                          truth[:, :1, :1])) / 2, abs=1e-5)


def test_delta_e_of_equal_colours_is_zero():
    colour = np.array([0.3, 0.5, 0.7])
    assert metrics.delta_e(colour, colour) == pytest.approx(0.0, abs=1e-4)
    assert metrics.delta_e(colour, colour[::-1]) > 10.0


def test_colourfulness_error_is_per_image_so_opposite_errors_do_not_cancel():
    grey = np.full((1, 8, 8, 3), 0.5, np.float32)
    rng = np.random.default_rng(0)
    vivid = rng.random((1, 8, 8, 3)).astype(np.float32)
    truth = np.concatenate([grey, vivid])
    prediction = np.concatenate([vivid, grey])  # same mean colourfulness, each image wrong
    quality = metrics.image_quality(prediction, truth)
    assert quality["colourfulness"] == pytest.approx(quality["true_colourfulness"], rel=1e-5)
    assert quality["colourfulness_error"] == pytest.approx(
        float(metrics.colourfulness(vivid)[0]), rel=1e-4)
    assert metrics.colourfulness_error(prediction, truth) == quality["colourfulness_error"]
