"""The RGB tasks' inputs and targets."""

import numpy as np
from conftest import make_task

from jaxcolor.tasks import rgb


def test_greyscale_is_channel_mean_in_unit_range():
    images = np.zeros((1, 4, 4, 3), np.uint8)
    images[..., 0] = 255
    grey = rgb.greyscale(images)
    assert grey.shape == (1, 4, 4, 1) and grey.dtype == np.float32
    np.testing.assert_allclose(grey, 1.0 / 3.0, rtol=1e-6)


def test_superres_input_is_pooled_then_upsampled():
    images = (np.random.default_rng(4).random((2, 32, 32, 3)) * 255).astype(np.uint8)
    blurry = rgb.blurry_input(images)
    assert blurry.shape == (2, 32, 32, 3) and blurry.dtype == np.float32
    cell_mean = images[:, :4, :4].mean(axis=(1, 2), keepdims=True) / 255.0
    np.testing.assert_allclose(blurry[:, :4, :4], np.broadcast_to(cell_mean, (2, 4, 4, 3)),
                               rtol=1e-5)
    assert np.all(blurry[:, 4:8, 0] == blurry[:, 4:5, 0])  # constant over each 4×4 cell


def test_superres_task_targets_are_original_colour_classes():
    images = (np.random.default_rng(5).random((4, 32, 32, 3)) * 255).astype(np.uint8)
    palette = np.random.default_rng(6).random((5, 3)).astype(np.float32)
    task = make_task("superres", images[:2], images[2:], palette)
    assert task.in_channels == 3 and task.task.num_outputs == 5
    np.testing.assert_array_equal(task.test_targets, rgb.colour_labels(images[2:], palette))
