"""Results files of every script: the output folder, atomic writes of results.json (rows, each
stamped with its provenance) and results.md, Markdown tables."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import importlib.metadata
import json
import math
import os
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax

from jaxcolor.errors import UserError

VERSIONED = ("jax", "jaxlib", "flax", "optax")


def prepare_output_dir(path: str, experiment: str | None = None) -> Path:
    """Create the output folder and check that it is writable, before any training. The probe
    file has a unique name: processes of one --distributed run check the same folder at once
    (one process's unlink of a shared probe name failed the other's). With ``experiment``,
    refuse a folder whose results.json holds another experiment's rows (they would be
    replaced)."""
    out = Path(path)
    others = sorted({row.get("experiment") for row in read_rows(out / "results.json")}
                    - {experiment, None})
    if experiment is not None and others:
        raise UserError(f"--output_dir={path} holds the results of {', '.join(others)}; this "
                        f"run ({experiment}) would replace them. Use another --output_dir.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise UserError(f"--output_dir={path} is not writable: {err.strerror or err}.") from err
    return out


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder + rename, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# The settings that name a results row (rows of the colourization experiments name theirs: the
# ExperimentConfig settings marked row). A run replaces the rows of its own settings in its
# folder's results.json and keeps every other row (earlier runs, runs writing alongside).
ROW_SETTINGS = ("experiment", "model", "task", "loss", "category", "epochs", "batch_size",
                "learning_rate", "num_filters", "kernel", "conv_init", "num_colours", "hflip",
                "lr_schedule", "warmup_epochs", "seed")
# What else a row says about how it was made; a replaced row that differs in it is reported.
ROW_ORIGIN = ("images",)
LOCK_NAME = ".results.lock"


@contextlib.contextmanager
def results_lock(out: Path) -> Iterator[None]:
    """Holds ``out``'s results files for one writer at a time (processes of one machine, or
    of several sharing a file system that supports ``flock``)."""
    with open(out / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def merge_results(out: Path, rows: Sequence[dict[str, Any]],
                  log: Callable[[str], None] | None = None,
                  settings: Sequence[str] = ROW_SETTINGS) -> list[dict[str, Any]]:
    """Write ``rows`` (each with :func:`provenance`) into ``out``/results.json after the rows
    already there whose ``settings`` none of them share (those are replaced); the merged rows.
    Call it under :func:`results_lock`. ``log`` hears a line for each replaced row that was
    made from other data."""
    new = [{**row, **provenance()} for row in rows]
    by_settings = {_settings(row, settings): row for row in new}
    kept = []
    for old in read_rows(out / "results.json"):
        row = by_settings.get(_settings(old, settings))
        if row is None:
            kept.append(old)
            continue
        changed = [f"{key}: {_origin_text(old.get(key))} → {_origin_text(row.get(key))}"
                   for key in ROW_ORIGIN if key in old and old.get(key) != row.get(key)]
        if changed and log is not None:
            log(f"results.json: the row of {row_label(row)} is replaced by this run's "
                f"({'; '.join(changed)})")
    write_json_atomic(out / "results.json", kept + new)
    return kept + new


def _origin_text(value: Any) -> str:
    if isinstance(value, dict) and {"source", "train", "test"} <= value.keys():
        return f"{value['train']:,} train / {value['test']:,} test from {value['source']}"
    return str(value)


def _settings(row: dict[str, Any], settings: Sequence[str]) -> str:
    return json.dumps([row.get(key) for key in settings])


def row_label(row: dict[str, Any]) -> str:
    """A results row in a few words: model, task, loss, batch, rate, epochs."""
    loss = "" if row.get("loss") in (None, "cross_entropy") else f" {row['loss']}"
    rate = row.get("learning_rate")
    return (f"{row.get('model')} {row.get('task')}{loss} bs{row.get('batch_size')} "
            + (f"lr{rate:g} " if isinstance(rate, int | float) else "") + f"{row.get('epochs')}ep")


def write_results(out: Path, rows: Sequence[dict[str, Any]],
                  log: Callable[[str], None] | None = None) -> None:
    """``rows`` merged into ``out``/results.json (:func:`merge_results`), under its lock."""
    with results_lock(out):
        merge_results(out, rows, log)


def provenance() -> dict[str, Any]:
    """What produced a result: :func:`code_commit`, library versions, backend, device, date."""
    return {"commit": code_commit(),
            "versions": {name: importlib.metadata.version(name) for name in VERSIONED},
            "backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind,
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")}


@functools.cache
def code_commit() -> str | None:
    """The commit of jaxcolor's git checkout, ``-dirty`` when tracked files differ from it (None
    outside a checkout). Read once per process, at import."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root:
            return None  # installed inside some other repository
        changed = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "HEAD") + ("-dirty" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return None


code_commit()  # read when the code is loaded: a commit made while a run goes on is not its code


def write_json_atomic(path: Path, value: Any) -> None:
    """Strict JSON: non-finite floats (e.g. the PSNR of a perfect prediction) become null."""
    write_text_atomic(path, json.dumps(_finite(value), indent=2, allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def format_cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4g}"
    return str(value)


def quality_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per (run, rendering of its prediction), from each row's
    ``quality_by_rendering`` (rows written before it existed: their flat metrics, as argmax)."""
    table = []
    for row in rows:
        renderings = row.get("quality_by_rendering") or {"argmax": row}
        table += [{**row, **quality, "rendering": name} for name, quality in renderings.items()]
    return table


def mean_sd(values: Sequence[float], digits: int = 2) -> str:
    """A table cell of ``values``: their mean ± sample standard deviation (the mean alone for
    one value)."""
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.{digits}f}{spread}"


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of ``rows`` with (key, header) ``columns``; a "|" inside a header or
    cell (e.g. "|mean − truth|") is escaped so it does not split the cell."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(header) for _, header in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(format_cell(row.get(key))) for key, _ in columns) + " |"
              for row in rows]
    return "\n".join(lines)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of an existing results.json, or [] when there is none."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return []
