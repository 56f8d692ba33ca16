"""The colorizer file: a round trip through save and load, colourizing any size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor import data
from jaxcolor.colorize.colorizer import colorize_lab, load_colorizer, save_colorizer
from jaxcolor.errors import UserError
from jaxcolor.models import ModelSpec, build_model
from jaxcolor.tasks.lab import LabRegression
from jaxcolor.training import TrainState


def test_colorizer_file_round_trip_keeps_size_and_full_resolution_lightness(tmp_path):
    spec = ModelSpec("unet", num_filters=4, kernel=3, num_outputs=2)
    model = build_model(spec)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    params = jax.tree.map(jnp.zeros_like, variables["params"])  # ab = 0: a grey output
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params,
                       batch_stats=variables["batch_stats"], opt_state=(), rng=jax.random.key(0))
    path = tmp_path / "colorizer.msgpack"
    save_colorizer(path, spec, LabRegression(), state, 0.38, category="horse")
    colorizer = load_colorizer(path)
    assert isinstance(colorizer.task, LabRegression) and colorizer.ab_bins is None
    assert colorizer.settings["category"] == "horse" and colorizer.temperature == 0.38
    grey = np.random.default_rng(0).integers(0, 256, (23, 37), np.uint8)  # odd sides
    for working_side in (0, 16):
        result = colorize_lab(colorizer, grey, working_side)
        assert result.shape == (23, 37, 3) and result.dtype == np.uint8
        # ab = 0 everywhere, so the output is the input's own L: the grey image itself.
        assert np.abs(result.astype(int) - grey[..., None]).max() <= 1
    colour = colorize_lab(colorizer, data.synthetic_images(1)[0], 0)
    assert colour.shape == (32, 32, 3)


def test_missing_or_foreign_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="cannot be read"):
        load_colorizer(tmp_path / "missing.msgpack")
    foreign = tmp_path / "foreign.msgpack"
    foreign.write_bytes(b"\x00not msgpack at all")
    with pytest.raises(UserError, match="is not a jaxcolor colorizer file"):
        load_colorizer(foreign)


def test_the_command_s_help_is_plain_text():
    from jaxcolor.colorize import command

    text = command.parser().format_help()
    assert "``" not in text and "colorize" in text


def test_a_folder_given_as_input_is_one_line_that_says_to_pass_its_files(tmp_path, capsys):
    from jaxcolor.colorize import command

    photos = tmp_path / "photos"
    photos.mkdir()
    assert command.main(["colorize", str(photos), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error == (f"error: {photos} is a folder; pass the image files themselves, e.g. "
                     f"jaxcolor colorize {photos}/*.jpg --out {tmp_path / 'out'}.\n")
