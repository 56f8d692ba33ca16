"""Tasks: every registered task's arrays, objective, head and rendering; the Lab tasks in
detail."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor import data, tasks
from jaxcolor.colour import lab
from jaxcolor.errors import UserError
from jaxcolor.models import ModelSpec, build_model
from jaxcolor.tasks import lab as lab_task
from jaxcolor.tasks.lab import AB_SCALE, baselines, soft_encoded_objective

PALETTE = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 0, 1]], np.float32)


@pytest.fixture(scope="module")
def images():
    return data.synthetic_images(12, seed=3)


def build(name, images, ab_bins_file=None):
    task = tasks.build_task(name, palette=lambda: PALETTE, ab_bins_file=ab_bins_file)
    return tasks.make_task_data(task, images[:8], images[8:])


def prepared(objective, targets):
    """The targets as the objective's loss takes them."""
    return targets if objective.prepare is None else objective.prepare(targets)


@pytest.mark.parametrize("model_name", ["cnn", "unet_transpose"])
@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_every_task_builds_arrays_a_model_and_renders_rgb(name, model_name, images):
    task_data = build(name, images)
    task = task_data.task
    assert task.name == name and task_data.train_inputs.shape[:3] == (8, 32, 32)
    assert task_data.train_inputs.dtype == np.float32 and task_data.in_channels in (1, 3)
    model = build_model(ModelSpec(model_name, num_filters=4, kernel=3,
                                  num_outputs=task.num_outputs, **task.head(4)))
    variables = jax.jit(model.init)(jax.random.key(0), task_data.test_inputs[:2])
    outputs = jax.jit(model.apply)(variables, task_data.test_inputs[:2])
    assert outputs.shape == (2, 32, 32, task.num_outputs)
    loss = task.objective.loss(outputs, prepared(task.objective, task_data.test_targets[:2]))
    assert loss.shape == (2, 32, 32) and np.isfinite(loss).all()
    renderings = task.renderings(0.5)
    assert task.default_rendering in renderings
    for temperature in renderings.values():
        rgb = task.render(task_data.test_inputs[:2], outputs, temperature)
        assert rgb.shape == (2, 32, 32, 3) and rgb.min() >= 0.0 and rgb.max() <= 1.0
    if task.classifies:  # the rebalanced loss weighs the same outputs differently
        rebalanced = task.objective_for("rebalanced", task_data.train_targets)
        assert not np.allclose(
            rebalanced.loss(outputs, prepared(rebalanced, task_data.test_targets[:2])), loss)
    else:
        with pytest.raises(UserError, match="--loss=rebalanced needs a classification task"):
            task.objective_for("rebalanced", task_data.train_targets)


def test_palette_is_fitted_only_by_tasks_that_use_it(images):
    def no_palette():
        raise AssertionError("a Lab task fitted a palette")

    for name in ("lab_regression", "lab_bins"):
        tasks.build_task(name, palette=no_palette)
    assert build("colourization", images).task.fingerprint_arrays()[0] is PALETTE
    assert build("lab_bins", images).task.fingerprint_arrays() == []  # built-in bins: code


def test_unknown_task_and_loss_are_one_line_errors():
    with pytest.raises(UserError, match="task 'hsv' is unknown"):
        tasks.check_task("hsv", "cross_entropy")
    with pytest.raises(UserError, match="--loss='l1' is unknown"):
        tasks.check_task("colourization", "l1")
    with pytest.raises(UserError, match="--loss=rebalanced needs a classification task"):
        tasks.check_task("lab_regression", "rebalanced")
    tasks.check_task("lab_bins", "rebalanced")


def test_superres_input_is_the_pooled_image_and_targets_the_originals_classes(images):
    task_data = build("superres", images)
    assert task_data.in_channels == 3
    np.testing.assert_allclose(task_data.test_inputs[:, :4, :4].std(axis=(1, 2)), 0, atol=1e-6)
    assert task_data.task.truth_column(task_data.test_targets)[1].shape == (4, 32, 32, 3)


def test_lab_tasks_take_l_and_predict_ab(images):
    regression, bins = build("lab_regression", images), build("lab_bins", images)
    for task_data in (regression, bins):
        assert task_data.train_inputs.shape == (8, 32, 32, 1)
        assert task_data.train_inputs.min() >= 0.0 and task_data.train_inputs.max() <= 1.0
        assert task_data.train_targets.shape == (8, 32, 32, 2)
    assert regression.task.num_outputs == 2 and not regression.task.classifies
    assert bins.task.num_outputs == len(lab.ab_bins()) and bins.task.classifies
    assert bins.task.head(32) == {"head_features": 32, "final_kernel": 1}
    # The true ab, rendered with the input's L, gives back the image.
    perfect = regression.test_targets / AB_SCALE
    rgb = regression.task.render(regression.test_inputs, perfect, None)
    np.testing.assert_allclose(rgb, images[8:] / 255.0, atol=2e-3)
    # A distribution peaked on each pixel's nearest bin renders within a bin of the truth.
    nearest = lab.nearest_bins(jnp.asarray(bins.test_targets), jnp.asarray(bins.task.bins), 1)[1]
    logits = 20.0 * jax.nn.one_hot(nearest[..., 0], bins.task.num_outputs)
    for temperature in (0.0, 0.38):
        ab = np.asarray(lab.rgb_to_lab(bins.task.render(bins.test_inputs, logits,
                                                        temperature)))[..., 1:]
        assert np.percentile(np.abs(ab - bins.test_targets), 95) < 8.0


def test_bins_from_a_file_enter_the_fingerprint(images, tmp_path):
    path = tmp_path / "bins.npy"
    np.save(path, lab.ab_bins()[:50])
    task = build("lab_bins", images, ab_bins_file=str(path)).task
    assert task.num_outputs == 50 and task.describe() == "CIE Lab, 50 ab bins"
    np.testing.assert_array_equal(task.fingerprint_arrays()[0], lab.ab_bins()[:50])


def test_baselines_keep_l_with_no_colour_or_the_mean_colour(images):
    task_data = build("lab_regression", images)
    renderings = baselines(task_data)
    grey_lab = np.asarray(lab.rgb_to_lab(renderings["grey"]))
    np.testing.assert_allclose(grey_lab[..., 0], 100.0 * task_data.test_inputs[..., 0],
                               atol=0.05)
    assert np.abs(grey_lab[..., 1:]).max() < 0.05
    mean_ab = np.asarray(lab.rgb_to_lab(renderings["mean colour"]))[..., 1:].reshape(-1, 2)
    np.testing.assert_allclose(np.median(mean_ab, 0),
                               task_data.train_targets.reshape(-1, 2).mean(0), atol=1.0)


def test_cheap_head_changes_only_the_last_block_and_classifier():
    model = build_model(ModelSpec("unet", num_filters=8, kernel=3, num_outputs=100,
                                  head_features=8, final_kernel=1))
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 16, 16, 1)))
    assert variables["params"]["block5"]["Conv_0"]["kernel"].shape == (3, 3, 16, 8)
    assert variables["params"]["final"]["kernel"].shape == (1, 1, 9, 100)
    assert jax.jit(model.apply)(variables, jnp.zeros((2, 16, 16, 1))).shape == (2, 16, 16, 100)
    newer = build_model(ModelSpec("unet_transpose", num_filters=8, kernel=3, num_outputs=100,
                                  head_features=8, final_kernel=1))
    variables = jax.jit(newer.init)(jax.random.key(0), jnp.zeros((1, 16, 16, 1)))
    assert variables["params"]["block4"]["kernel"].shape == (3, 3, 16, 8)
    assert variables["params"]["final"]["kernel"].shape == (1, 1, 9, 100)


def test_soft_encoded_objective_is_the_weighted_soft_cross_entropy():
    bins = lab.ab_bins()[:40]  # a small palette of bins keeps the check readable
    weights = np.linspace(0.5, 2.0, len(bins)).astype(np.float32)
    ab = jnp.asarray(bins[[3, 17]] + np.array([[1.0, -2.0], [0.0, 3.0]], np.float32)
                     ).reshape(1, 1, 2, 2)
    logits = jax.random.normal(jax.random.key(2), (1, 1, 2, len(bins)))
    objective = soft_encoded_objective(bins, weights)
    packed = jnp.asarray(objective.prepare(np.asarray(ab)))
    target = np.asarray(lab.soft_encode(ab, jnp.asarray(bins)))
    expected = -np.sum(target * np.asarray(jax.nn.log_softmax(logits, -1)), -1)
    expected *= weights[[3, 17]].reshape(1, 1, 2)
    np.testing.assert_allclose(np.asarray(objective.loss(logits, packed)), expected, rtol=1e-5)
    # Its gradient is the weighted softmax − target, as for the written-out soft cross-entropy.
    gradient = jax.grad(lambda z: jnp.sum(objective.loss(z, packed)))(logits)
    expected_gradient = (weights[[3, 17]].reshape(1, 1, 2, 1)
                         * (np.asarray(jax.nn.softmax(logits, -1)) - target))
    np.testing.assert_allclose(np.asarray(gradient), expected_gradient, atol=1e-6)
    # Logits = log(target), the minimiser: full accuracy and a lower loss than random logits.
    peaked = jnp.log(jnp.asarray(target) + 1e-12)
    assert np.all(np.asarray(objective.metrics(peaked, packed)["accuracy"]) == 1.0)
    assert float(jnp.sum(objective.loss(peaked, packed))) < float(
        jnp.sum(objective.loss(logits, packed)))


def test_packed_soft_encoding_is_the_sparse_soft_encoding_of_each_pixel():
    bins = lab.ab_bins()
    ab = np.random.default_rng(0).uniform(-100, 100, (2, 3, 4, 2)).astype(np.float32)
    ab[1] = ab[0, ::-1]  # repeated values are encoded once and given to each of their pixels
    packed = lab_task.packed_soft_encoding(ab, bins)
    assert packed.shape == (2, 3, 4, 2 * lab_task.NEIGHBOURS) and packed.dtype == np.float32
    weights, indices = lab.sparse_soft_encode(jnp.asarray(ab), jnp.asarray(bins))
    unpacked_weights, unpacked_indices = lab_task.unpack_soft_encoding(jnp.asarray(packed))
    np.testing.assert_array_equal(np.asarray(unpacked_indices), np.asarray(indices))
    np.testing.assert_allclose(np.asarray(unpacked_weights), np.asarray(weights),
                               rtol=1e-5, atol=1e-7)
