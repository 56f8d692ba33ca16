"""run_grid: one data load for a grid, every config checked first, the question's hooks."""

import json
import threading

import jax
import pytest

from jaxcolor.config import ExperimentConfig
from jaxcolor.errors import UserError
from jaxcolor.runner import Hooks, run_grid
from jaxcolor.runner.grid import PHASES

TINY = dict(source="synthetic", epochs=2, batch_size=32, num_filters=4, num_colours=6,
            num_samples=2)


def test_hooks_run_once_per_run_and_once_at_the_end(tmp_path, caplog):
    calls = []

    def after_run(run, out):
        calls.append(("after", run.config.epochs))
        return {"extra": 10 * run.config.epochs}

    def at_end(runs, out):
        calls.append(("end", len(runs)))
        return "## The measured answer"

    def alongside(data):
        calls.append(("alongside", threading.current_thread().name, len(data.train_inputs)))

    config = ExperimentConfig("grid", output_dir=str(tmp_path), report_epochs=(1,), **TINY)
    lines = []
    with jax.log_compiles():
        runs = run_grid([config], "a grid", hooks=Hooks(after_run, at_end, alongside),
                        log=lines.append)
    alongside_call = ("alongside", "alongside", 256)  # on its thread, with the task's data
    assert calls.count(alongside_call) == 1 and calls.index(alongside_call) < len(calls) - 1
    calls.remove(alongside_call)
    assert calls == [("after", 1), ("after", 2), ("end", 2)]
    assert [run.row["extra"] for run in runs] == [10, 20]
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [(row["epochs"], row["extra"]) for row in rows] == [(1, 10), (2, 20)]
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("# a grid") and "## The measured answer" in text
    assert len(list(tmp_path.glob("samples_*.png"))) == 2
    # The training's phases on its full-length row; they add up to its total.
    assert "phases" not in rows[0]
    phases = rows[1]["phases"]
    assert list(phases) == [*PHASES, "total"] and all(phases[name] >= 0 for name in PHASES)
    assert phases["train"] > 0 and phases["compile"] > 0 and phases["data"] > 0
    assert phases["total"] == pytest.approx(sum(phases[name] for name in PHASES))
    assert lines[-1].startswith("time: data ") and "× its epochs'" in lines[-1]
    # TensorBoard's samples after each epoch, the reported epochs' metrics and sample figures
    # share one compiled program.
    assert sum("Compiling jit(render)" in r.getMessage() for r in caplog.records) == 1


def test_shared_costs_are_charged_once(tmp_path):
    config = ExperimentConfig("grid", output_dir=str(tmp_path), **TINY)
    lines = []
    runs = run_grid([config, config.replace(seed=1)], "a grid", log=lines.append)
    assert [line for line in lines if line.startswith("-- run")] == ["-- run 1 of 2",
                                                                     "-- run 2 of 2"]
    first, second = (run.row["phases"] for run in runs)
    assert first["data"] > 0 and second["data"] == 0.0 and second["palette"] == 0.0


def test_a_bad_later_config_fails_before_anything_trains(tmp_path):
    good = ExperimentConfig("grid", output_dir=str(tmp_path / "out"), **TINY)
    with pytest.raises(UserError, match="--model='resnet' is unknown"):
        run_grid([good, good.replace(model="resnet")], "a grid", log=pytest.fail)
    assert not (tmp_path / "out").exists()


def test_only_the_first_process_prints_log_lines(monkeypatch, capsys):
    from jaxcolor.runner import run as runner

    runner.log_line("shown")
    monkeypatch.setattr(runner.parallel, "is_main_process", lambda: False)
    runner.log_line("hidden")
    assert not runner.on_terminal()
    assert capsys.readouterr().out == "shown\n"


def test_an_error_alongside_the_training_fails_the_grid(tmp_path):
    def alongside(data):
        raise ValueError("measurement failed")

    config = ExperimentConfig("grid", output_dir=str(tmp_path), **TINY)
    with pytest.raises(ValueError, match="measurement failed"):
        run_grid([config], "a grid", hooks=Hooks(alongside=alongside), log=lambda line: None)
