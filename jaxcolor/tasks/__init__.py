"""Tasks: what a model learns from images (see :class:`Task`), by name.

Adding a task means one class in this package and one entry in :data:`TASKS`; the runner,
training, reports and colorizer work from the :class:`Task` interface alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jaxcolor.errors import UserError
from jaxcolor.tasks.base import LOSSES, Task, TaskData, make_task_data
from jaxcolor.tasks.lab import LabBins, LabRegression, LabTask
from jaxcolor.tasks.rgb import Colourization, RGBRegression, SuperResolution

__all__ = ["LOSSES", "TASKS", "LabTask", "Task", "TaskData", "build_task", "check_task",
           "make_task_data"]

TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (
    Colourization, RGBRegression, SuperResolution, LabRegression, LabBins)}


def check_task(name: str, loss: str) -> None:
    """A UserError unless ``name`` is a task that takes ``loss``."""
    if name not in TASKS:
        raise UserError(f"task {name!r} is unknown; use one of {', '.join(TASKS)}.")
    if loss not in LOSSES:
        raise UserError(f"--loss={loss!r} is unknown; use one of {', '.join(LOSSES)}.")
    if loss == "rebalanced" and not TASKS[name].classifies:
        raise UserError(f"--loss=rebalanced needs a classification task, not {name}.")


def build_task(name: str, *, palette: Callable[[], np.ndarray],
               ab_bins_file: str | None = None) -> Task:
    """The task ``name``. ``palette()`` gives the k-means colour classes (called only by the
    RGB tasks, so Lab tasks fit none); ``ab_bins_file`` replaces the built-in ab bins of
    ``lab_bins`` (:func:`jaxcolor.colour.lab.ab_bins`)."""
    check_task(name, "cross_entropy")
    return TASKS[name].create(palette, ab_bins_file)
