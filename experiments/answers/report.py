"""RESULTS.md: every experiment's rows beside the assignment's reference numbers
(../shared/ASSIGNMENT.md: the original PyTorch code on lossless CIFAR-10), and its figures."""

from __future__ import annotations

import itertools
import os
import re
import shutil
from pathlib import Path
from typing import Any

from jaxcolor.config import default_of, setting_of, settings_where
from jaxcolor.results import markdown_table, read_rows

# (experiment, model, batch size, epochs) → what the reference runs reported.
REFERENCES: dict[tuple[str, str, int, int], str] = {
    ("q1_regression", "regression_cnn", 100, 15): "train 0.0097 / val 0.0095",
    ("q1_regression", "regression_cnn", 100, 25): "train 0.0074 / val 0.0076",
    ("q1_regression", "regression_cnn", 100, 50): "train 0.0058 / val 0.0061",
    ("q2_classification", "cnn", 100, 25):
        "train 1.5496 / val 1.5649, 41%; another run 1.5479 / 1.5716, 41.7%",
    ("q3_unet", "unet", 100, 25): "train 1.2582 / val 1.3384, 48%; another run 1.2302 / 1.3032, "
                                  "50.4%",
    ("q3_unet", "unet", 50, 25): "train 1.1947 / val 1.3935, 47%",
    ("q4_super_resolution", "cnn", 100, 25): "train 1.47 / val 1.4790, 46%",
    ("q4_super_resolution", "unet", 100, 25): "train 1.45 / val 1.47, 46%",
}


def reference_for(row: dict[str, Any]) -> str:
    """The reference result matching a results.json row, or "" when the spec gives none."""
    key = (row.get("experiment"), row.get("model"), row.get("batch_size"), row.get("epochs"))
    if row.get("learning_rate") != 1e-3 or row.get("num_filters") != 32 or row.get("kernel") != 3:
        return ""
    return REFERENCES.get(key, "")


def settings_of(row: dict[str, Any]) -> str | None:
    """The settings that tell a row from its neighbours (those declared with a report label),
    where they differ from the defaults; None when none do."""
    parts = [setting_of(name).label.format(row[name]) for name in settings_where()
             if setting_of(name).label is not None and row.get(name, default_of(name))
             != default_of(name)]
    return ", ".join(parts) or None


REPORT_COLUMNS = [
    ("model", "model"), ("task", "task"), ("settings", "settings"), ("batch_size", "batch"),
    ("epochs", "epochs"), ("learning_rate", "lr"), ("train_loss", "train loss"),
    ("val_loss", "val loss"),
    ("val_accuracy", "val acc %"), ("best_val_accuracy", "best val acc % (epoch)"),
    ("train_images_per_sec", "train img/s"), ("wall_seconds", "wall s"),
    ("reference", "reference (ASSIGNMENT.md)"),
]


# Copied to the published folder: tables, JSON and figures; never models, logs or checkpoints.
UNPUBLISHED = shutil.ignore_patterns(".*", "checkpoints", "tensorboard", "*.msgpack", "*.npz",
                                     "*.log")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def experiment_folders(results_dir: Path) -> list[Path]:
    """The folders holding a results.json: the questions' (q*, r*) first, then the suite's own
    studies (e.g. precision), each by name."""
    return sorted((path.parent for path in results_dir.glob("*/results.json")),
                  key=lambda folder: (re.match(r"[qr]\d", folder.name) is None, folder.name))


def publish(results_dir: Path, publish_dir: Path) -> None:
    """``publish_dir`` becomes a copy of ``results_dir``'s experiment folders (the report links
    the copies, versioned in a repository that ignores results/); folders of experiments no
    longer in ``results_dir`` are removed."""
    names = {folder.name for folder in experiment_folders(results_dir)}
    for folder in experiment_folders(publish_dir):
        if folder.name not in names:
            shutil.rmtree(folder)
    for folder in experiment_folders(results_dir):
        shutil.rmtree(publish_dir / folder.name, ignore_errors=True)
        shutil.copytree(folder, publish_dir / folder.name, ignore=UNPUBLISHED)


def publishing_differences(results_dir: Path, publish_dir: Path) -> list[str]:
    """Where ``publish_dir`` is not what :func:`publish` would make of ``results_dir``."""
    differences = []
    for folder in sorted({*experiment_folders(results_dir), *experiment_folders(publish_dir)},
                         key=lambda path: path.name):
        source, copy = results_dir / folder.name, publish_dir / folder.name
        ignored = UNPUBLISHED(str(source), [p.name for p in source.iterdir()]
                              if source.is_dir() else [])
        wanted = {p.name for p in source.iterdir() if p.is_file() and p.name not in ignored} \
            if source.is_dir() else set()
        present = {p.name for p in copy.iterdir() if p.is_file()} if copy.is_dir() else set()
        differences += [f"{copy / name}: missing" for name in sorted(wanted - present)]
        differences += [f"{copy / name}: not in {source}" for name in sorted(present - wanted)]
        differences += [f"{copy / name}: differs from {source / name}"
                        for name in sorted(wanted & present)
                        if (source / name).read_bytes() != (copy / name).read_bytes()]
    return differences


def missing_links(markdown_path: Path) -> list[str]:
    """Links and images of a Markdown file whose targets do not exist."""
    return [target for target in LINK.findall(markdown_path.read_text())
            if "://" not in target and not (markdown_path.parent / target).exists()]


def provenance_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Which code, libraries and machine made the rows: one commit, or how they are mixed."""
    commits = sorted({str(row.get("commit")) for row in rows})
    if len(commits) == 1 and commits[0] != "None":
        row = rows[0]
        versions = ", ".join(f"{name} {version}" for name, version in row["versions"].items())
        dates = sorted({r["date"] for r in rows})
        return [f"Made by `python experiments/reproduce.py` at commit `{commits[0]}` "
                f"({dates[0]}{' to ' + dates[-1] if len(dates) > 1 else ''}): {versions}; "
                f"{row['backend']} ({row['device_kind']}). Data: CIFAR-10 as JPEG files "
                "(`--image_dir=../shared/data/cifar10-jpeg`), category horse unless a table says "
                "otherwise."]
    unrecorded = sum(row.get("commit") is None for row in rows)
    recorded = [commit for commit in commits if commit != "None"]
    return [f"**Not one sweep:** these rows come from {len(recorded)} recorded commit(s)"
            f"{' (' + ', '.join(c[:12] for c in recorded) + ')' if recorded else ''} and "
            f"{unrecorded} rows record none (made before rows carried their provenance). "
            "`python experiments/reproduce.py` makes them all again from one commit."]


def experiment_of(run: tuple[Path, list[dict[str, Any]]]) -> str:
    """The script that made a folder's rows (q7_lab for q7_lab_seed1): its runs and their
    variants (seeds, flips, widths) share one table."""
    folder, rows = run
    return str(rows[0].get("experiment") or folder.name).split(" (")[0]


def _text_section(folder: Path, link: str) -> list[str]:
    """A folder whose rows are not training runs: its results.md inline."""
    body = (folder / "results.md").read_text() if (folder / "results.md").exists() else ""
    body = "\n".join("##" + line if line.startswith("#") else line
                     for line in body.splitlines()[1:])
    return [f"## {folder.name}", "", body.strip(), "",
            f"Source: [{link}/results.md]({link}/results.md)", ""]


def _table_section(runs: list[tuple[Path, list[dict[str, Any]]]], links: dict[Path, str]
                   ) -> list[str]:
    """One question's training runs in one table (a "run" column names each row's folder when
    there are several: seeds, flips, widths), linked details, the main run's figures."""
    main = min((folder for folder, _ in runs),  # the script's own folder, if there
               key=lambda folder: (folder.name != experiment_of(runs[0]), len(folder.name)))
    table_rows = []
    for folder, rows in runs:
        for row in rows:
            best = row.get("best_val_accuracy")
            table_rows.append({**row, "run": folder.name, "reference": reference_for(row) or None,
                               "settings": settings_of(row),
                               "best_val_accuracy": None if best is None else
                               f"{best:.2f} ({row.get('best_epoch')})"})
    columns = ([("run", "run")] if len(runs) > 1 else []) + REPORT_COLUMNS
    details = ", ".join(f"[{folder.name}]({links[folder]}/results.md)" for folder, _ in runs)
    others = len(runs) - 1
    title = main.name + (f" (and {others} variant{'s' * (others > 1)})" if others else "")
    return [f"## {title}", "", markdown_table(table_rows, columns), "",
            f"Details, measured explanations and figures: {details}", "",
            *[f"![{png.stem}]({links[main]}/{png.name})"
              for png in sorted(main.glob("*.png"))][:3], ""]


def build_results_markdown(results_dir: Path, relative_to: Path) -> str:
    """One section per question of ``results_dir``'s experiment folders: its runs' rows beside
    the reference numbers, and figures, linked relative to ``relative_to``; a header says what
    made them."""
    folders = [(folder, read_rows(folder / "results.json"))
               for folder in experiment_folders(results_dir)]
    folders = [(folder, rows) for folder, rows in folders if rows]
    links = {folder: Path(os.path.relpath(folder, relative_to)).as_posix()
             for folder, _ in folders}
    sections = ["# Results", "",
                "Generated by `python experiments/report.py` from `results/*/results.json`. "
                "Each row is a run made with this repository; the reference column quotes "
                "`ASSIGNMENT.md` (original PyTorch code on lossless CIFAR-10).", "",
                *provenance_lines([row for _, rows in folders for row in rows]), ""]
    for _, runs in itertools.groupby(folders, key=experiment_of):
        runs = list(runs)
        training = [(folder, rows) for folder, rows in runs
                    if all("model" in row for row in rows)]
        if training:
            sections += _table_section(training, links)
        for folder, rows in runs:
            if (folder, rows) not in training:
                sections += _text_section(folder, links[folder])
    return "\n".join(sections)
