"""Results files of every script: the output folder, atomic writes of results.json (rows, each
stamped with its provenance) and results.md, Markdown tables."""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Sequence
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


def write_results(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``out``/results.json: ``rows``, each with :func:`provenance`."""
    write_json_atomic(out / "results.json", [{**row, **provenance()} for row in rows])


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
