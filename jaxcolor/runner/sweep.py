"""A sweep: experiment scripts run one after another in dependency order, each into
``<results_dir>/<name>``, so that one commit produces every published result.

A marker file in each run's folder records the commit that started the run, and "done" when the
run finished (a grid writes results.json after each of its runs, so an interrupted one leaves
rows too). A folder left by other code (or by hand) is cleared before its run starts; a run
interrupted at this commit resumes from its checkpoints. Progress and the time left
come from each run's expected minutes, scaled by how the finished runs compared with theirs.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from jaxcolor.errors import UserError

MARKER = ".sweep-commit"  # in a run's folder: the commit that started it, then "done"
# Under the results dir: checkpoints that runs share (--checkpoint_dir), so that a training
# another run already finished at this commit is resumed, not repeated (same settings and data).
SHARED_CHECKPOINTS = "checkpoints"
REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Run:
    name: str  # its folder under the results dir
    script: str  # experiments/<script>.py
    args: tuple[str, ...] = ()  # "{results}" stands for the results dir
    needs: tuple[str, ...] = ()  # runs whose results this one reads
    minutes: float = 2.0  # expected on a 2-core CPU
    env: tuple[tuple[str, str], ...] = ()

    def command(self, results: str) -> list[str]:
        return ["python", f"experiments/{self.script}.py",
                *(arg.format(results=results) for arg in self.args),
                f"--output_dir={results}/{self.name}"]

    def command_line(self, results: str) -> str:
        """As a user would type it (environment first)."""
        return " ".join([*(f"{key}={shlex.quote(value)}" for key, value in self.env),
                         *map(shlex.quote, self.command(results))])


def check_order(runs: Sequence[Run]) -> None:
    """Names are unique and every run comes after the runs it needs."""
    seen: set[str] = set()
    for run in runs:
        if run.name in seen:
            raise ValueError(f"two runs are named {run.name}")
        if missing := [need for need in run.needs if need not in seen]:
            raise ValueError(f"{run.name} needs {', '.join(missing)}, which must come before it")
        seen.add(run.name)


def select(runs: Sequence[Run], only: Sequence[str]) -> list[Run]:
    """The runs named in ``only`` (a name, or a question: "q7" selects q7_*), in order; all of
    them when ``only`` is empty."""
    if not only:
        return list(runs)
    unknown = [key for key in only
               if not any(key in (run.name, run.name.split("_")[0]) for run in runs)]
    if unknown:
        raise UserError(f"--only={','.join(only)}: no run is named {', '.join(unknown)}; "
                        "--list shows them.")
    return [run for run in runs if run.name in only or run.name.split("_")[0] in only]


def is_done(run: Run, results: Path, commit: str) -> bool:
    marker = results / run.name / MARKER
    return marker.exists() and marker.read_text().split() == [commit, "done"]


def with_needs(chosen: Sequence[Run], runs: Sequence[Run], results: Path,
               commit: str) -> list[Run]:
    """``chosen`` plus, transitively, the runs they need that are not done at ``commit``."""
    by_name = {run.name: run for run in runs}
    wanted = {run.name for run in chosen}
    for run in reversed(runs):  # a run's needs come before it
        if run.name in wanted:
            wanted |= {need for need in run.needs
                       if not is_done(by_name[need], results, commit)}
    return [run for run in runs if run.name in wanted]


def _prepare_folder(folder: Path, commit: str, log: Callable[[str], None]) -> None:
    """Clear a folder another commit (or a hand-made run) wrote; mark it as this commit's."""
    marker = folder / MARKER
    if folder.exists() and (not marker.exists() or marker.read_text().split()[:1] != [commit]):
        log(f"{folder.name}: clearing {folder} (written by other code; this sweep is at "
            f"{commit[:12]})")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(commit + "\n")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def run_sweep(runs: Sequence[Run], results: Path, commit: str,
              log: Callable[[str], None] = print) -> None:
    """Runs each of ``runs`` not done at ``commit`` (``results`` relative to the working
    directory, as the scripts' own paths are), streaming its output; stops at the first failure
    with one error line (the same command continues)."""
    todo = [run for run in runs if not is_done(run, results, commit)]
    if done := len(runs) - len(todo):
        log(f"{done} of {len(runs)} runs already done at this commit: skipped")
    if todo:
        _prepare_folder(results / SHARED_CHECKPOINTS, commit, log)
    expected_total = sum(60 * run.minutes for run in todo)
    expected_done = spent_total = 0.0
    for index, run in enumerate(todo, 1):
        # Measured over expected time so far, from a prior of 5 expected minutes taken at face
        # value: one short run that beat its estimate does not rescale the whole sweep.
        pace = (spent_total + 300) / (expected_done + 300)
        left = pace * (expected_total - expected_done)
        log(f"[{index}/{len(todo)}] {run.name} (about {_minutes(pace * 60 * run.minutes)}; "
            f"sweep about {_minutes(left)} left): {run.command_line(str(results))}")
        _prepare_folder(results / run.name, commit, log)
        sys.stdout.flush()  # before the script's own output
        start = time.perf_counter()
        _, script, *args = run.command(str(results))
        code = subprocess.run([sys.executable, str(REPO / script), *args],
                              env={**os.environ, **dict(run.env)}).returncode
        spent = time.perf_counter() - start
        if code != 0:
            raise UserError(f"{run.name} failed (exit {code}) after {_minutes(spent)}; the same "
                            "command skips the finished runs and resumes this one.")
        (results / run.name / MARKER).write_text(f"{commit}\ndone\n")
        spent_total += spent
        expected_done += 60 * run.minutes
        log(f"{run.name} done in {_minutes(spent)}")
