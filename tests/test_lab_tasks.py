"""The Lab tasks (L → ab regression, L → ab bins), their rendering, and the colorizer file."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor import data, lab, tasks
from jaxcolor.colorize import colorize_lab, load_colorizer, save_colorizer
from jaxcolor.config import ExperimentConfig
from jaxcolor.errors import UserError
from jaxcolor.models import build_model
from jaxcolor.train import TrainState


@pytest.fixture(scope="module")
def images():
    return data.synthetic_images(12, seed=3)


def test_lab_tasks_take_l_and_predict_ab(images):
    regression = tasks.make_task("lab_regression", images[:8], images[8:], None)
    bins = tasks.make_task("lab_bins", images[:8], images[8:], None)
    for task in (regression, bins):
        assert task.train_inputs.shape == (8, 32, 32, 1) and task.in_channels == 1
        assert task.train_inputs.min() >= 0.0 and task.train_inputs.max() <= 1.0
        assert task.train_targets.shape == (8, 32, 32, 2)
    assert regression.num_outputs == 2 and not regression.classifies
    assert bins.num_outputs == len(lab.ab_bins()) and bins.classifies
    # The true ab, rendered with the input's L, gives back the image.
    perfect = regression.test_targets / lab.AB_SCALE
    rgb = tasks.render(regression, regression.test_inputs, perfect, None)
    np.testing.assert_allclose(rgb, images[8:] / 255.0, atol=2e-3)
    # A distribution peaked on each pixel's nearest bin renders within a bin of the truth.
    nearest = lab.nearest_bins(jnp.asarray(bins.test_targets), jnp.asarray(bins.ab_bins), 1)[1]
    logits = 20.0 * jax.nn.one_hot(nearest[..., 0], bins.num_outputs)
    for temperature in (0.0, 0.38):
        ab = np.asarray(lab.rgb_to_lab(tasks.render(bins, bins.test_inputs, logits,
                                                    temperature)))[..., 1:]
        assert np.percentile(np.abs(ab - bins.test_targets), 95) < 8.0


def test_baselines_keep_l_with_no_colour_or_the_mean_colour(images):
    task = tasks.make_task("lab_regression", images[:8], images[8:], None)
    baselines = tasks.baselines(task)
    grey_lab = np.asarray(lab.rgb_to_lab(baselines["grey"]))
    np.testing.assert_allclose(grey_lab[..., 0], 100.0 * task.test_inputs[..., 0], atol=0.05)
    assert np.abs(grey_lab[..., 1:]).max() < 0.05
    mean_ab = np.asarray(lab.rgb_to_lab(baselines["mean colour"]))[..., 1:].reshape(-1, 2)
    np.testing.assert_allclose(np.median(mean_ab, 0),
                               task.train_targets.reshape(-1, 2).mean(0), atol=1.0)


def test_config_rejects_rebalanced_lab_regression_and_accepts_all_categories():
    with pytest.raises(UserError, match="--loss=rebalanced needs a classification task"):
        ExperimentConfig("x", task="lab_regression", loss="rebalanced").validate()
    ExperimentConfig("x", task="lab_bins", loss="rebalanced", category="all").validate()
    with pytest.raises(UserError, match="task 'hsv' is unknown"):
        ExperimentConfig("x", task="hsv").validate()


def test_cheap_head_changes_only_the_last_block_and_classifier():
    model = build_model("unet", num_filters=8, kernel=3, num_outputs=100, head_features=8,
                        final_kernel=1)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)))
    assert variables["params"]["block5"]["Conv_0"]["kernel"].shape == (3, 3, 16, 8)
    assert variables["params"]["final"]["kernel"].shape == (1, 1, 9, 100)
    assert model.apply(variables, jnp.zeros((2, 16, 16, 1))).shape == (2, 16, 16, 100)


def test_colorizer_file_round_trip_keeps_size_and_full_resolution_lightness(images, tmp_path):
    task = tasks.make_task("lab_regression", images[:8], images[8:], None)
    settings = {"model": "unet", "num_filters": 4, "kernel": 3, "conv_init": "pytorch",
                "temperature": 0.38}
    model = build_model("unet", num_filters=4, kernel=3, num_outputs=2)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    params = jax.tree.map(jnp.zeros_like, variables["params"])  # ab = 0: a grey output
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params,
                       batch_stats=variables["batch_stats"], opt_state=(), rng=jax.random.key(0))
    path = tmp_path / "colorizer.msgpack"
    save_colorizer(path, settings, state, task)
    colorizer = load_colorizer(path)
    assert colorizer.task == "lab_regression" and colorizer.ab_bins is None
    grey = np.random.default_rng(0).integers(0, 256, (23, 37), np.uint8)  # odd sides
    for working_side in (0, 16):
        result = colorize_lab(colorizer, grey, working_side)
        assert result.shape == (23, 37, 3) and result.dtype == np.uint8
        # ab = 0 everywhere, so the output is the input's own L: the grey image itself.
        assert np.abs(result.astype(int) - grey[..., None]).max() <= 1
    with pytest.raises(UserError, match="cannot be read"):
        load_colorizer(tmp_path / "missing.msgpack")
