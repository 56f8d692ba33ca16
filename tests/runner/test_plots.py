"""Figures: training curves readable for any number of epochs."""

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
