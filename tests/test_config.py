"""ExperimentConfig validates itself on construction and on every replace."""

import re

import pytest

from jaxcolor.config import ExperimentConfig
from jaxcolor.errors import UserError


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 0}, "--batch_size=0 must be a positive integer"),
    ({"num_colours": 1}, "--num_colours=1 must be at least 2"),
    ({"kernel": 4}, "--kernel=4 must be a positive odd number"),
    ({"temperature": 0.0}, "--temperature=0.0 must lie in (0, 10]"),
    ({"learning_rate": -1.0}, "--learning_rate=-1.0 must be positive"),
    ({"report_epochs": (30,)}, "report epochs [30] must lie in 1..--epochs=25"),
    ({"category": "zebra"}, "--category='zebra' is unknown"),
    ({"checkpoint_every": -1}, "--checkpoint_every=-1 must be 0 (the last and reported epochs "
                               "only) or a positive number of epochs"),
])
def test_every_construction_and_replace_validates(changes, message):
    with pytest.raises(UserError, match=re.escape(message)):
        ExperimentConfig("x", **changes)
    with pytest.raises(UserError, match=re.escape(message)):
        ExperimentConfig("x").replace(**changes)


def test_a_folder_source_accepts_its_own_category_names():
    assert ExperimentConfig("x", category="zebra", image_dir="/tmp").category == "zebra"


def test_checkpoint_every_zero_means_only_the_last_and_reported_epochs():
    assert ExperimentConfig("x", checkpoint_every=0).checkpoint_every == 0
