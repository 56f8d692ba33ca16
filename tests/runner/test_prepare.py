"""The runner's checks before training: every name against its registry, files readable."""

import numpy as np
import pytest

from jaxcolor.config import ExperimentConfig
from jaxcolor.errors import UserError
from jaxcolor.runner import preflight


@pytest.mark.parametrize("changes, message", [
    ({"model": "resnet"}, "--model='resnet' is unknown; use one of cnn, unet, regression_cnn"),
    ({"conv_init": "he"}, "--conv_init='he' is unknown"),
    ({"epoch_loop": "while"}, "--epoch_loop='while' is unknown"),
    ({"task": "hsv"}, "task 'hsv' is unknown"),
    ({"task": "lab_regression", "loss": "rebalanced"},
     "--loss=rebalanced needs a classification task, not lab_regression"),
])
def test_unknown_names_are_refused_before_training(changes, message):
    with pytest.raises(UserError, match=message):
        preflight(ExperimentConfig("x", **changes))


def test_a_bad_bins_file_is_named(tmp_path):
    path = tmp_path / "bins.npy"
    np.save(path, np.zeros((4, 3)))
    with pytest.raises(UserError, match="expected \\(Q, 2\\) ab bin centres"):
        preflight(ExperimentConfig("x", task="lab_bins", ab_bins_file=str(path)))
    config = ExperimentConfig("x", task="lab_bins", loss="rebalanced", category="all")
    assert preflight(config) is config
