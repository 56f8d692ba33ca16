"""q7's verdict (Lab bins vs the best RGB-24 rendering) and its summary over training seeds."""

import json

import pytest
from conftest import run_script

from answers import q7 as comparison
from jaxcolor.results import markdown_table

SETTINGS = {"experiment": "q7_lab", "model": "unet", "category": "horse", "epochs": 25,
            "batch_size": 100, "learning_rate": 0.001, "num_filters": 32, "kernel": 3,
            "conv_init": "pytorch"}


def quality(auc: float, gap: float, error: float, psnr: float) -> dict:
    return {"ab_auc_rebalanced": auc, "colourfulness_gap": gap, "colourfulness_error": error,
            "psnr": psnr}


def comparison_json(bins: dict, calibrated_bins: dict) -> dict:
    """Two RGB-24 renderings (each best on some criterion) and the Lab-bins model, fixed and
    calibrated."""
    rgb = [{"task": "colourization", "rendering": "mode (T→0)", "rendering_key": "argmax",
            **quality(72.0, 0.7, 10.8, 22.7)},
           {"task": "colourization", "rendering": "mean (T=1)", "rendering_key": "expected",
            **quality(71.0, 9.0, 12.0, 24.5)}]
    lab = {"task": "lab_bins", "rendering": "annealed mean (T=0.38)",
           "rendering_key": "annealed_mean", **bins}
    calibrated = {"task": "lab_bins", "rendering": "annealed mean (T=2, calibrated on training "
                  "images)", "rendering_key": "annealed_mean", "temperature": 2.0,
                  **calibrated_bins}
    return {"rows": [*rgb, lab], "calibrated": [calibrated]}


def test_verdict_checks_take_the_best_rgb_rendering_per_criterion():
    rows = comparison_json(quality(74.0, 0.5, 10.9, 24.0), quality(0, 0, 0, 0))["rows"]
    checks = {check.criterion: check for check in comparison.verdict_checks(rows)}
    auc = checks["rebalanced AuC %"]
    assert (auc.bar, auc.bar_source, auc.passed) == (72.0, "mode (T→0)", True)
    assert auc.margin == pytest.approx(2.0)
    gap = checks["|mean colourfulness − truth's|"]
    assert (gap.bar, gap.passed) == (0.7, True) and gap.margin == pytest.approx(0.2)
    error = checks["per-image |colourfulness − truth's|"]
    assert (error.bar, error.passed) == (10.8, False) and error.margin == pytest.approx(-0.1)
    psnr = checks["PSNR dB"]  # a floor need only be reached
    assert (psnr.bar, psnr.bar_source, psnr.passed) == (24.0, "floor", True)
    assert comparison.verdict_checks(rows[:2]) == []  # no Lab-bins row, no verdict
    assert "does not beat" in comparison.verdict(rows)[0]


def test_markdown_table_escapes_pipes_inside_cells():
    table = markdown_table([{"gap": "|a − b|"}], [("gap", "|mean − truth|")])
    assert table.splitlines() == ["| \\|mean − truth\\| |", "|---|", "| \\|a − b\\| |"]


def write_run(root, folder, seed, bins, calibrated_bins, loss="rebalanced"):
    (root / folder).mkdir(parents=True)
    rows = [{**SETTINGS, "task": task, "loss": task_loss, "seed": seed}
            for task, task_loss in (("colourization", "cross_entropy"), ("lab_bins", loss))]
    (root / folder / "results.json").write_text(json.dumps(rows))
    (root / folder / "comparison.json").write_text(json.dumps(
        comparison_json(bins, calibrated_bins)))


def test_seed_summary_groups_runs_that_differ_only_in_the_seed(tmp_path):
    winning, losing = quality(74.0, 0.5, 10.5, 24.5), quality(73.0, 2.0, 11.0, 23.5)
    write_run(tmp_path, "q7_lab", 0, losing, winning)
    write_run(tmp_path, "q7_lab_seed1", 1, losing, losing)
    write_run(tmp_path, "q7_lab_seed1_again", 1, winning, winning)  # same seed: first kept
    write_run(tmp_path, "q7_lab_plain", 0, winning, winning, loss="cross_entropy")
    groups = comparison.runs_by_settings(tmp_path)
    assert sorted([run.folder for run in group] for group in groups) == [
        ["q7_lab", "q7_lab_seed1"], ["q7_lab_plain"]]

    out = tmp_path / "summary"
    result = run_script("q7_over_seeds", f"--results_dir={tmp_path}", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    text = (out / "results.md").read_text()
    assert "Lab-bins loss rebalanced: seeds 0, 1" in text and "q7_lab_plain" not in text
    assert "passes every criterion in 0 of 2 seeds" in text  # fixed temperature
    assert "passes every criterion in 1 of 2 seeds" in text  # calibrated
    records = json.loads((out / "results.json").read_text())
    auc = [r for r in records if r["decoding"] == "calibrated"
           and r["criterion"] == "rebalanced AuC %"]
    assert [(r["seed"], r["passed"]) for r in auc] == [(0, True), (1, True)]
    assert [r["margin"] for r in auc] == pytest.approx([2.0, 1.0])
    assert "| rebalanced AuC % | 73.50 ± 0.71 | 72.00 ± 0.00 | 1.50 ± 0.71 | 1.00 | 2 of 2 |" \
        in text


def test_seed_summary_without_two_seeds_is_one_line(tmp_path):
    write_run(tmp_path, "q7_lab", 0, quality(74.0, 0.5, 10.5, 24.5),
              quality(74.0, 0.5, 10.5, 24.5))
    result = run_script("q7_over_seeds", f"--results_dir={tmp_path}",
                        f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "holds no two q7 runs that differ only in their seed" in result.stderr
