"""Run a grid of configurations on one data load, with the question's own hooks."""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxcolor.config import ExperimentConfig
from jaxcolor.models import prepare_kernels
from jaxcolor.results import prepare_output_dir
from jaxcolor.runner.outputs import samples_name, write_outputs, write_samples
from jaxcolor.runner.prepare import image_origin, load_images, preflight, prepare_task
from jaxcolor.runner.run import Log, RunOutput, log_line, train_and_evaluate
from jaxcolor.tasks import TaskData
from jaxcolor.timing import add_seconds, timed
from jaxcolor.training import parallel


def _no_extras(run: RunOutput, out: Path) -> dict[str, Any]:
    return {}


def _no_section(runs: list[RunOutput], out: Path) -> str:
    return ""


@dataclasses.dataclass(frozen=True)
class Hooks:
    """What a question adds to its grid; each runs on the writing process.

    ``after_run(run, out)``: called once per finished run (each reported epoch); returns extra
    fields for the run's results row and may write per-run figures into ``out``.
    ``at_end(runs, out)``: called once after every run; returns the question's Markdown
    section of results.md (its measured answer) and may write its extra files into ``out``.
    ``alongside(task_data)``: the section's work that needs only task data (e.g. measurements of
    freshly initialised models), called once on a background thread after the grid's first
    trained epoch, with that run's task data, so that its compilation uses CPU time the train
    steps leave idle; it has finished (its error raised here) before ``at_end`` is called (run
    then, with the first run's task data, if no epoch was trained).
    """

    after_run: Callable[[RunOutput, Path], dict[str, Any]] = _no_extras
    at_end: Callable[[list[RunOutput], Path], str] = _no_section
    alongside: Callable[[TaskData], None] | None = None


class _Alongside:
    """``hooks.alongside`` of a grid: started at most once, on a daemon thread (an interrupted
    grid does not wait for it), and finished before the section."""

    def __init__(self, work: Callable[[TaskData], None] | None) -> None:
        self._work, self._thread, self._error = work, None, None

    def start(self, data: TaskData) -> None:
        if self._work is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(data,), daemon=True,
                                            name="alongside")
            self._thread.start()

    def _run(self, data: TaskData) -> None:
        try:
            self._work(data)
        except BaseException as error:  # re-raised on the main thread by finish
            self._error = error

    def finish(self, data: TaskData) -> None:
        """Wait for the work (run it here on ``data`` if no epoch was trained to start it)."""
        if self._work is None:
            return
        if self._thread is None:
            self._work(data)
            return
        self._thread.join()
        if self._error is not None:
            raise self._error


PHASES = ("data", "palette", "compile", "train", "eval", "checkpoint", "reporting")


def run_grid(configs: Sequence[ExperimentConfig], title: str, *, hooks: Hooks = Hooks(),
             log: Log = log_line) -> list[RunOutput]:
    """Train each config on one shared image load (configs may mix tasks); rewrite the outputs
    after every run, so an interrupted grid keeps the runs that finished; then the question's
    section. Every config is checked before the first run trains.

    Each training's full-length row gets ``phases``: seconds of data (loading, task arrays),
    palette, compile, train, eval, checkpoint and reporting (metrics, figures, hooks, tables),
    and their total; shared costs are charged to the run that paid them, so the rows add up to
    the job, whose breakdown is printed at the end."""
    start = time.perf_counter()
    for cfg in configs:
        preflight(cfg)
    prepare_kernels()  # built while the images load
    first = configs[0]
    out = prepare_output_dir(first.output_dir, first.experiment)
    images = load_images(first, log)
    origin = image_origin(first, images)
    unpaid = {"data": time.perf_counter() - start}  # shared costs, charged to the next run
    data_by_task: dict[str, TaskData] = {}
    runs: list[RunOutput] = []
    writes = parallel.is_main_process()  # one writer in multi-process runs
    alongside = _Alongside(hooks.alongside if writes else None)
    for index, cfg in enumerate(configs):
        if len(configs) > 1:
            log(f"-- run {index + 1} of {len(configs)}")
        if cfg.task not in data_by_task:
            data_by_task[cfg.task] = prepare_task(cfg, images, log, unpaid)
        trained = train_and_evaluate(cfg, data_by_task[cfg.task], log, after_first_epoch=(
            functools.partial(alongside.start, data_by_task[cfg.task])))
        phases = trained[-1].row["phases"]
        with timed(phases, "reporting"):
            for run in trained:
                run = dataclasses.replace(run, row={**run.row, "images": origin,
                                                    "samples": samples_name(run)})
                if writes:
                    write_samples(out, run, first.num_samples)
                    run = dataclasses.replace(run, row={**run.row, **hooks.after_run(run, out)})
                runs.append(run)
            if writes and index < len(configs) - 1:  # the last run's come with the section
                write_outputs(out, title, runs, log=log)
        for name, seconds in unpaid.items():
            add_seconds(phases, name, seconds)
        unpaid = {}
    with timed(runs[-1].row["phases"], "reporting"):
        alongside.finish(data_by_task[first.task])
        section = hooks.at_end(runs, out) if writes else ""
    trainings = [run.row for run in runs if "phases" in run.row]
    for row in trainings:
        phases = {name: row["phases"].get(name, 0.0) for name in PHASES}
        row["phases"] = {**phases, "total": sum(phases.values())}
    job = {name: sum(row["phases"][name] for row in trainings) for name in PHASES}
    if writes:
        write_outputs(out, title, runs, notes=section, log=log)
        log(f"wrote {out}/results.md, results.json and figures")
    epochs = job["train"] + job["eval"]
    total = time.perf_counter() - start
    log("time: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in job.items())
        + f"; total {total:.1f}s" + (f", {total / epochs:.2f}× its epochs' {epochs:.1f}s"
                                    if epochs else ""))
    return runs
