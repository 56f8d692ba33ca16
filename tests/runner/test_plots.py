"""Figures: training curves readable for any number of epochs; image grids."""

import numpy as np
import pytest

from jaxcolor.runner import plots


@pytest.mark.parametrize("epochs", [1, 2, 7])
def test_training_curves_mark_every_epoch_on_integer_ticks(tmp_path, monkeypatch, epochs):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig))
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_accuracy": 10.0 * e}
               for e in range(1, epochs + 1)]
    plots.training_curves([("cnn", history)], tmp_path / "curve.png")
    axes = drawn[0].axes
    assert len(axes) == 2
    for axis in axes:
        for line in axis.get_lines():
            assert line.get_marker() not in (None, "None", "")
            assert len(line.get_xdata()) == epochs
        assert all(float(tick).is_integer() for tick in axis.get_xticks())


def test_image_grid_shows_each_column_as_its_samples_stacked_with_gaps(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig))
    grey = np.linspace(0, 1, 3 * 16 * 16).reshape(3, 16, 16, 1).astype(np.float32)
    colour = np.full((3, 16, 16, 3), 0.25, np.float32)
    plots.image_grid([("input", grey), ("prediction", -colour)], tmp_path / "grid.png",
                     title="run")
    axes = drawn[0].axes
    assert [axis.get_title() for axis in axes] == ["input", "prediction"]
    shown = [np.asarray(axis.get_images()[0].get_array()) for axis in axes]
    assert shown[0].shape == shown[1].shape[:2] == (3 * 16 + 2, 16)
    np.testing.assert_array_equal(shown[0][17:33], grey[1, ..., 0])  # sample 2 after a gap
    assert np.isnan(shown[0][16]).all() and (shown[1][16] == 1.0).all()
    assert (shown[1][:16] == 0.0).all()  # clipped to [0, 1]
