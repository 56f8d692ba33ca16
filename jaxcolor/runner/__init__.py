"""The runner: composes data → task → model → training → results rows, tables and figures for
the experiment scripts, which choose what to run and add their questions' hooks."""

from jaxcolor.runner.grid import Hooks, run_grid
from jaxcolor.runner.prepare import load_images, load_task_data, preflight, prepare_task
from jaxcolor.runner.run import (
    RunOutput,
    log_line,
    model_spec,
    predict_renderings,
    train_and_evaluate,
)

__all__ = ["Hooks", "RunOutput", "load_images", "load_task_data", "log_line", "model_spec",
           "predict_renderings", "preflight", "prepare_task", "run_grid", "train_and_evaluate"]
