"""q7 (beyond the assignment): colourize in CIE Lab, as Zhang, Isola & Efros (2016) do.

Trains, on the same images and epochs, the assignment's best model (the U-Net over 24 RGB
colours), a Lab regression (L → ab, MSE) and a Lab ab-bins classifier (soft-encoded targets,
class rebalancing, annealed-mean decoding), and compares them with the grey and mean-colour
baselines on PSNR, SSIM, colourfulness and the ab-error AuC (plain and class-rebalanced).
Writes the Lab-bins model as a colorizer file for `jaxcolor colorize`, decoding at the
temperature calibrated on training images.

    python experiments/q7_lab.py --image_dir=../shared/data/cifar10-jpeg
"""

from pathlib import Path

from absl import flags

from jaxcolor import cli, comparison, parallel, report
from jaxcolor.colorize import save_colorizer
from jaxcolor.experiment import RunOutput, head_for, log_line, run_grid
from jaxcolor.objectives import LOSSES
from jaxcolor.tasks import LAB_TASKS, TaskData

cli.define_flags(default_model="unet")
flags.DEFINE_enum("bins_loss", "rebalanced", LOSSES, "Loss of the Lab-bins model: Zhang's "
                  "class-rebalanced soft cross-entropy, or the plain one.")
flags.DEFINE_string("ab_bins_file", None, "A .npy (Q, 2) list of ab bin centres on the "
                    "10-wide grid for the Lab-bins model, e.g. Zhang et al.'s pts_in_hull.npy "
                    "(313 bins); default: the 261 bins sRGB colours fall in (lab.ab_bins).")
flags.DEFINE_string("colorizer", None, "Where the Lab-bins model is written for `jaxcolor "
                    "colorize` (default: <output_dir>/colorizer.msgpack).")


def main(argv: list[str]) -> None:
    del argv
    base = cli.config_from_flags("q7_lab")
    configs = [base.replace(task="colourization"),
               base.replace(task="lab_regression", loss="cross_entropy"),
               base.replace(task="lab_bins", loss=flags.FLAGS.bins_loss,
                            ab_bins_file=flags.FLAGS.ab_bins_file).validate()]
    out = Path(base.output_dir)
    baselines: dict[str, dict[str, float]] = {}  # from the first Lab run's data, once
    sweeps: dict[str, list[dict]] = {}  # per classifier run, computed once (notes run often)
    calibrated_by_run: dict[str, dict] = {}

    def notes(runs: list[RunOutput], data: TaskData) -> str:
        lab_runs = [run for run in runs if run.config.task in LAB_TASKS]
        if lab_runs and not baselines:
            baselines.update(comparison.baseline_quality(lab_runs[0].task_data))
        rows = comparison.comparison_rows([run.row for run in runs], baselines,
                                          base.temperature)
        for run in runs:
            if run.task_data.classifies and run.slug not in sweeps:
                sweeps[run.slug] = comparison.temperature_sweep(run)
                calibrated_by_run[run.slug] = comparison.calibrated_row(run, sweeps[run.slug])
        sweep = [row for rows_of_run in sweeps.values() for row in rows_of_run]
        calibrated = list(calibrated_by_run.values())
        report.write_json_atomic(out / "comparison.json", {
            "rows": rows, "temperature_sweep": sweep, "calibrated": calibrated})
        comparison.comparison_figure(runs, base.num_samples, out / "comparison.png")
        return comparison.comparison_notes(rows, sweep, calibrated)

    runs = run_grid(configs, "q7 — colourization in CIE Lab: regression and ab bins vs RGB-24",
                    notes=notes)
    if not parallel.is_main_process():  # one writer in multi-process runs
        return
    bins_run = runs[-1]
    path = Path(flags.FLAGS.colorizer or out / "colorizer.msgpack")
    cfg = bins_run.config
    # The colorizer decodes at the temperature calibrated on training images (the one the
    # calibrated verdict scores); the run's --temperature is kept for the record.
    temperature = calibrated_by_run[bins_run.slug]["temperature"]
    save_colorizer(path, {"model": cfg.model, "num_filters": cfg.num_filters,
                          "kernel": cfg.kernel, "conv_init": cfg.conv_init,
                          "temperature": temperature, "run_temperature": cfg.temperature,
                          "category": cfg.category, "epochs": cfg.epochs, "loss": cfg.loss,
                          **head_for(cfg, bins_run.task_data)}, bins_run.state,
                   bins_run.task_data)
    log_line(f"wrote the Lab-bins colorizer to {path}, decoding at T={temperature:g} "
             f"(calibrated on training images) (use: jaxcolor colorize IMAGE... "
             f"--checkpoint {path} --out DIR [--temperature T])")


if __name__ == "__main__":
    cli.run(main)
