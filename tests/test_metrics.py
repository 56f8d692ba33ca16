import numpy as np
import pytest

from jaxcolor import metrics

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


def test_delta_e_of_equal_colours_is_zero():
    colour = np.array([0.3, 0.5, 0.7])
    assert metrics.delta_e(colour, colour) == pytest.approx(0.0, abs=1e-4)
    assert metrics.delta_e(colour, colour[::-1]) > 10.0
