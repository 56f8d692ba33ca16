"""q7: the assignment's RGB-24 classifier against Lab regression and Zhang-style ab bins (and
model-free baselines), on the metrics a viewer notices: the rows, the verdict, the figure."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxcolor.colour.metrics import colourfulness_error, image_quality
from jaxcolor.results import markdown_table, mean_sd, read_rows
from jaxcolor.runner import RunOutput, plots, predict_renderings
from jaxcolor.tasks import TaskData
from jaxcolor.tasks.lab import baselines

METHODS = {"colourization": "RGB-24 classes", "lab_regression": "Lab regression",
           "lab_bins": "Lab ab bins"}
COLUMNS = [("method", "method"), ("rendering", "rendering"), ("psnr", "PSNR dB"),
           ("ssim", "SSIM"), ("colourfulness", "colourfulness"),
           ("colourfulness_gap", "|mean colourfulness − truth's|"),
           ("colourfulness_error", "per-image |colourfulness − truth's|"),
           ("ab_auc", "ab-error AuC %"),
           ("ab_auc_rebalanced", "rebalanced AuC %")]


def rendering_label(rendering: str, temperature: float) -> str:
    """``annealed_mean`` → ``annealed mean (T=0.38)`` and so on."""
    return {"argmax": "mode (T→0)", "expected": "mean (T=1)",
            "annealed_mean": f"annealed mean (T={temperature:g})"}.get(rendering, rendering)


def baseline_quality(lab_data: TaskData) -> dict[str, dict[str, float]]:
    """Image quality of the grey and mean-colour baselines on a Lab task's test images."""
    truth = lab_data.test_images.astype(np.float32) / 255.0
    return {name: image_quality(rgb, truth) for name, rgb in baselines(lab_data).items()}


def comparison_rows(run_rows: Sequence[dict[str, Any]],
                    baselines: dict[str, dict[str, float]], temperature: float
                    ) -> list[dict[str, Any]]:
    """One row per baseline and per (run, rendering), with |colourfulness − truth's|."""
    rows = [{"method": f"baseline: {name}", "rendering": "-", **quality}
            for name, quality in baselines.items()]
    for row in run_rows:
        renderings = row["quality_by_rendering"]
        for rendering, quality in renderings.items():
            rows.append({"method": METHODS.get(row["task"], row["task"]), "task": row["task"],
                         "model": row["model"], "epochs": row["epochs"],
                         "rendering": rendering_label(rendering, temperature),
                         "rendering_key": rendering, "val_accuracy": row["val_accuracy"],
                         **{key: quality[key] for key in (
                             "psnr", "ssim", "colourfulness", "true_colourfulness",
                             "colourfulness_error", "ab_auc", "ab_auc_rebalanced")}})
    return [with_colourfulness_gap(row) for row in rows]


def with_colourfulness_gap(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` plus |mean colourfulness − the truth's|."""
    return {**row, "colourfulness_gap": abs(row["colourfulness"] - row["true_colourfulness"])}


@dataclasses.dataclass(frozen=True)
class Check:
    """One verdict criterion: the Lab-bins model's value against the bar it must pass."""

    criterion: str
    ours: float
    bar: float
    bar_source: str  # the RGB-24 rendering that set the bar, or "floor"
    higher_is_better: bool
    strict: bool = True  # must beat the bar (a floor need only be reached)

    @property
    def margin(self) -> float:
        """How far the Lab-bins model is on the good side of the bar (negative: it fails)."""
        return self.ours - self.bar if self.higher_is_better else self.bar - self.ours

    @property
    def passed(self) -> bool:
        return self.margin > 0 if self.strict else self.margin >= 0


def bins_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The row the verdict judges: the last Lab-bins row at the annealed mean, if any."""
    return next((r for r in reversed(rows) if r.get("task") == "lab_bins"
                 and r["rendering_key"] == "annealed_mean"), None)


def verdict_checks(rows: Sequence[dict[str, Any]], psnr_floor: float = 24.0) -> list[Check]:
    """The Lab-bins model at the annealed mean (the last such row) against the best of every
    RGB-24 rendering, per criterion: class-rebalanced AuC, colourfulness closeness to the truth
    (the gap between mean colourfulness and the mean per-image gap), and PSNR ≥ ``psnr_floor``.
    Empty without both an RGB-24 and a Lab-bins row."""
    rgb = [r for r in rows if r.get("task") == "colourization"]
    ours = bins_row(rows)
    if not rgb or ours is None:
        return []

    def against(key: str, criterion: str, higher_is_better: bool) -> Check:
        best = (max if higher_is_better else min)(rgb, key=lambda r: r[key])
        return Check(criterion, ours[key], best[key], best["rendering"], higher_is_better)

    return [against("ab_auc_rebalanced", "rebalanced AuC %", True),
            against("colourfulness_gap", "|mean colourfulness − truth's|", False),
            against("colourfulness_error", "per-image |colourfulness − truth's|", False),
            Check("PSNR dB", ours["psnr"], psnr_floor, "floor", True, strict=False)]


def verdict(rows: Sequence[dict[str, Any]], psnr_floor: float = 24.0) -> list[str]:
    """:func:`verdict_checks` as Markdown: the outcome, then one line per criterion."""
    checks = verdict_checks(rows, psnr_floor)
    if not checks:
        return ["(The verdict needs both an RGB-24 and a Lab-bins run.)"]
    rendering = bins_row(rows)["rendering"]
    lines = [f"- {'✓' if check.passed else '✗'} Lab bins, {rendering}: "
             + (f"PSNR {check.ours:.2f} dB vs the {check.bar:g} dB floor"
                if check.bar_source == "floor" else
                f"{check.criterion} {check.ours:.2f} vs RGB-24's best {check.bar:.2f} "
                f"({check.bar_source})")
             for check in checks]
    outcome = "beats" if all(check.passed for check in checks) else "does not beat"
    return [f"**Verdict: the Lab-bins model {outcome} the RGB-24 model on these criteria.**", "",
            *lines]


SWEEP_TEMPERATURES = (0.0, 0.2, 0.38, 0.6, 1.0, 1.5, 2.0, 3.0)


def temperature_sweep(run: RunOutput, temperatures: Sequence[float] = SWEEP_TEMPERATURES
                      ) -> list[dict[str, Any]]:
    """A classifier's test-set quality when decoded at each annealed-mean temperature."""
    truth = run.task_data.test_images.astype(np.float32) / 255.0
    rendered = predict_renderings(run.config, run.state, run.task_data,
                                  temperatures={f"T={t:g}": t for t in temperatures})
    method = METHODS.get(run.config.task, run.config.task)
    return [with_colourfulness_gap({"method": method, "task": run.config.task,
                                    "temperature": temperatures[i], "rendering": name,
                                    **image_quality(rgb, truth)})
            for i, (name, rgb) in enumerate(rendered.items())]


def calibrate_temperature(run: RunOutput, temperatures: Sequence[float] = SWEEP_TEMPERATURES,
                          count: int = 1000) -> float:
    """The annealed-mean temperature whose renderings of the first ``count`` *training* images
    are closest to their truth in colourfulness (least mean per-image |difference|): a decoder
    setting chosen without looking at the test set."""
    task_data = run.task_data
    truth = task_data.train_images[:count].astype(np.float32) / 255.0
    rendered = predict_renderings(run.config, run.state, task_data, count,
                                  temperatures={f"{t:g}": t for t in temperatures},
                                  inputs=task_data.train_inputs)
    errors = [colourfulness_error(rgb, truth) for rgb in rendered.values()]
    return temperatures[int(np.argmin(errors))]


def calibrated_row(run: RunOutput, sweep: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run's :func:`temperature_sweep` row at its :func:`calibrate_temperature`
    temperature, in the shape of :func:`comparison_rows` (rendering key ``annealed_mean``)."""
    temperature = calibrate_temperature(run, [row["temperature"] for row in sweep])
    row = next(r for r in sweep if r["temperature"] == temperature)
    return {**row, "rendering_key": "annealed_mean",
            "rendering": f"annealed mean (T={temperature:g}, calibrated on training images)"}


def calibrated_verdict_rows(rows: Sequence[dict[str, Any]],
                            calibrated: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the calibrated verdict judges: every RGB-24 row and the calibrated rows."""
    return [*(r for r in rows if r.get("task") == "colourization"), *calibrated]


def comparison_notes(rows: Sequence[dict[str, Any]],
                     sweep: Sequence[dict[str, Any]] = (),
                     calibrated: Sequence[dict[str, Any]] = ()) -> str:
    """The Markdown section: the table, the verdict, the temperature sweep and the figure."""
    lines = ["## RGB-24 vs Lab (same images, same epochs)", "",
             markdown_table(rows, COLUMNS), "", *verdict(rows), ""]
    if sweep:
        lines += ["### Decoding temperature", "",
                  "Each classifier decoded at several annealed-mean temperatures, on the same "
                  "test images. This shows the trade-off a `--temperature` buys (lower: more "
                  "colourful, lower PSNR); the verdict above uses the temperature fixed before "
                  "the run, not the best one found here.", "",
                  markdown_table(sweep, COLUMNS), ""]
    if calibrated:
        lines += ["### With the temperature calibrated on training images", "",
                  "Each classifier decoded at the sweep temperature whose renderings of 1,000 "
                  "*training* images come closest to their truth in per-image colourfulness "
                  "(no test data involved), then scored on the test set; the verdict compares "
                  "the Lab-bins model at its calibrated temperature with every RGB-24 rendering "
                  "above and the RGB-24 model's calibrated one.", "",
                  markdown_table(calibrated, COLUMNS), "",
                  *verdict(calibrated_verdict_rows(rows, calibrated)), ""]
    return "\n".join([*lines, "![side by side](comparison.png)", ""])


def comparison_figure(runs: Sequence[RunOutput], count: int, path: Path) -> None:
    """Input, truth, then every run's renderings, for the first ``count`` test images."""
    first = runs[0].task_data
    columns = [("grey input", first.test_images[:count].astype(np.float32).mean(-1,
                                                                               keepdims=True)
                / 255.0),
               ("ground truth", first.test_images[:count].astype(np.float32) / 255.0)]
    for run in runs:
        method = METHODS.get(run.config.task, run.config.task)
        renderings = predict_renderings(run.config, run.state, run.task_data, count)
        for rendering, rgb in renderings.items():
            label = rendering_label(rendering, run.config.temperature)
            single = len(renderings) == 1
            columns.append((method if single else f"{method}\n{label}", rgb))
    plots.image_grid(columns, path, title="RGB-24 classes vs Lab regression vs Lab ab bins")


# q7 over training seeds ------------------------------------------------------------------------

SETTINGS = ("model", "task", "loss", "category", "epochs", "batch_size", "learning_rate",
            "num_filters", "kernel", "conv_init", "hflip")
SETTING_DEFAULTS = {"hflip": False}  # for results written before the setting existed
DECODINGS = {"fixed": "At the temperature fixed before the run (`--temperature`)",
             "calibrated": "At the temperature calibrated on training images"}


@dataclasses.dataclass(frozen=True)
class SeedRun:
    """One q7 result folder: its training seed, settings and comparison.json."""

    folder: str
    seed: int
    settings: str
    comparison: dict[str, Any]

    def judged_rows(self, decoding: str) -> list[dict[str, Any]]:
        """The rows the ``decoding`` ("fixed" or "calibrated") verdict judges."""
        rows = self.comparison["rows"]
        if decoding == "calibrated":
            rows = calibrated_verdict_rows(rows, self.comparison.get("calibrated", []))
        return list(rows)

    def bins_rendering(self, decoding: str) -> str:
        row = bins_row(self.judged_rows(decoding))
        return "-" if row is None else row["rendering"]


def describe_settings(row: dict[str, Any]) -> str:
    """A q7 run's shared settings in a few words (from its Lab-bins row)."""
    return (f"{row['model']}, {row['num_filters']} filters, {row['epochs']} epochs, category "
            f"{row['category']}, batch {row['batch_size']}, lr {row['learning_rate']:g}, "
            f"Lab-bins loss {row['loss']}{', random flips' if row.get('hflip') else ''}")


def runs_by_settings(results_dir: Path) -> list[list[SeedRun]]:
    """The q7 result folders under ``results_dir`` grouped by every setting but the seed (the
    first folder by name per seed), each group sorted by seed."""
    groups: dict[str, dict[int, SeedRun]] = {}
    for path in sorted(results_dir.glob("*/comparison.json")):
        rows = read_rows(path.parent / "results.json")
        if not rows or rows[0].get("experiment") != "q7_lab":
            continue
        comparison = json.loads(path.read_text())
        run = SeedRun(path.parent.name, int(rows[0]["seed"]), describe_settings(rows[-1]),
                      comparison)
        fixed_temperature = run.bins_rendering("fixed")
        key = json.dumps([[row.get(k, SETTING_DEFAULTS.get(k)) for k in SETTINGS] for row in rows]
                         + [fixed_temperature])
        groups.setdefault(key, {}).setdefault(run.seed, run)
    return [sorted(group.values(), key=lambda run: run.seed) for group in groups.values()]


def seed_summary(runs: Sequence[SeedRun]) -> tuple[list[str], list[dict[str, Any]]]:
    """Markdown (the verdict per seed, then each criterion over seeds) and flat records
    (one per decoding, seed and criterion) for runs that differ only in their seed."""
    lines = [f"## {runs[0].settings}: seeds {', '.join(str(run.seed) for run in runs)}", ""]
    records: list[dict[str, Any]] = []
    for decoding, title in DECODINGS.items():
        judged = [(run, verdict_checks(run.judged_rows(decoding))) for run in runs]
        judged = [(run, checks) for run, checks in judged if checks]
        if not judged:
            continue
        per_seed = []
        for run, checks in judged:
            rendering = run.bins_rendering(decoding)
            records += [{"decoding": decoding, "seed": run.seed, "folder": run.folder,
                         "rendering": rendering, **dataclasses.asdict(check),
                         "margin": check.margin, "passed": check.passed} for check in checks]
            per_seed.append({"seed": run.seed, "folder": run.folder, "rendering": rendering,
                             **{check.criterion: f"{check.ours:.2f} vs {check.bar:.2f} "
                                f"{'✓' if check.passed else '✗'}" for check in checks},
                             "verdict": "beats" if all(c.passed for c in checks) else "no"})
        criteria = [check.criterion for check in judged[0][1]]
        over_seeds, positive_means = [], 0
        for i, criterion in enumerate(criteria):
            checks = [run_checks[i] for _, run_checks in judged]
            positive_means += float(np.mean([c.margin for c in checks])) > 0
            over_seeds.append({
                "criterion": criterion, "ours": mean_sd([c.ours for c in checks]),
                "bar": mean_sd([c.bar for c in checks]),
                "margin": mean_sd([c.margin for c in checks]),
                "worst": f"{min(c.margin for c in checks):.2f}",
                "passed": f"{sum(c.passed for c in checks)} of {len(checks)}"})
        wins = sum(all(c.passed for c in checks) for _, checks in judged)
        lines += [f"### {title}", "",
                  "Each cell: the Lab-bins model vs the bar (the best RGB-24 rendering of that "
                  "seed, or the PSNR floor), ✓ when it passes.", "",
                  markdown_table(per_seed, [("seed", "seed"), ("folder", "run"),
                                            ("rendering", "Lab-bins rendering"),
                                            *((c, c) for c in criteria),
                                            ("verdict", "verdict")]), "",
                  "Over seeds (mean ± sample sd; margin = how far the Lab-bins model is on the "
                  "good side of the bar, per seed):", "",
                  markdown_table(over_seeds, [
                      ("criterion", "criterion"), ("ours", "Lab bins"),
                      ("bar", "bar (RGB-24's best / floor)"), ("margin", "margin"),
                      ("worst", "worst margin"), ("passed", "seeds passing")]), "",
                  f"**The Lab-bins model passes every criterion in {wins} of {len(judged)} "
                  f"seeds; the mean margin is positive for {positive_means} of "
                  f"{len(over_seeds)} criteria.**", ""]
    return lines, records
