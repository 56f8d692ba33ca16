"""run_grid: one data load for a grid, every config checked first, the question's hooks."""

import json

import pytest

from jaxcolor.config import ExperimentConfig
from jaxcolor.errors import UserError
from jaxcolor.runner import Hooks, run_grid

TINY = dict(source="synthetic", epochs=2, batch_size=32, num_filters=4, num_colours=6,
            num_samples=2)


def test_hooks_run_once_per_run_and_once_at_the_end(tmp_path):
    calls = []

    def after_run(run, out):
        calls.append(("after", run.config.epochs))
        return {"extra": 10 * run.config.epochs}

    def at_end(runs, out):
        calls.append(("end", len(runs)))
        return "## The measured answer"

    config = ExperimentConfig("grid", output_dir=str(tmp_path), report_epochs=(1,), **TINY)
    runs = run_grid([config], "a grid", hooks=Hooks(after_run, at_end), log=lambda line: None)
    assert calls == [("after", 1), ("after", 2), ("end", 2)]
    assert [run.row["extra"] for run in runs] == [10, 20]
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [(row["epochs"], row["extra"]) for row in rows] == [(1, 10), (2, 20)]
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("# a grid") and "## The measured answer" in text
    assert len(list(tmp_path.glob("samples_*.png"))) == 2


def test_a_bad_later_config_fails_before_anything_trains(tmp_path):
    good = ExperimentConfig("grid", output_dir=str(tmp_path / "out"), **TINY)
    with pytest.raises(UserError, match="--model='resnet' is unknown"):
        run_grid([good, good.replace(model="resnet")], "a grid", log=pytest.fail)
    assert not (tmp_path / "out").exists()
