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

from answers import q7 as comparison
from jaxcolor import app
from jaxcolor.colorize.colorizer import save_colorizer
from jaxcolor.results import write_json_atomic
from jaxcolor.runner import Hooks, RunOutput, cli, log_line, run_grid
from jaxcolor.tasks import LOSSES
from jaxcolor.tasks.lab import LabTask

cli.define_flags(default_model="unet")
flags.DEFINE_enum("bins_loss", "rebalanced", LOSSES, "Loss of the Lab-bins model: Zhang's "
                  "class-rebalanced soft cross-entropy, or the plain one.")
flags.DEFINE_string("ab_bins_file", None, "A .npy (Q, 2) list of ab bin centres on the "
                    "10-wide grid for the Lab-bins model, e.g. Zhang et al.'s pts_in_hull.npy "
                    "(313 bins); default: the 261 bins sRGB colours fall in.")
flags.DEFINE_string("colorizer", None, "Where the Lab-bins model is written for `jaxcolor "
                    "colorize` (default: <output_dir>/colorizer.msgpack).")


def main(argv: list[str]) -> None:
    del argv
    base = cli.config_from_flags("q7_lab")
    configs = [base.replace(task="colourization"),
               base.replace(task="lab_regression", loss="cross_entropy"),
               base.replace(task="lab_bins", loss=flags.FLAGS.bins_loss,
                            ab_bins_file=flags.FLAGS.ab_bins_file)]

    def answer(runs: list[RunOutput], out: Path) -> str:
        lab_data = next(run.task_data for run in runs if isinstance(run.task_data.task, LabTask))
        rows = comparison.comparison_rows([run.row for run in runs],
                                          comparison.baseline_quality(lab_data), base.temperature)
        classifiers = [run for run in runs if run.task_data.task.classifies]
        sweeps = [comparison.temperature_sweep(run) for run in classifiers]
        calibrated = [comparison.calibrated_row(run, sweep)
                      for run, sweep in zip(classifiers, sweeps, strict=True)]
        sweep = [row for rows_of_run in sweeps for row in rows_of_run]
        write_json_atomic(out / "comparison.json", {
            "rows": rows, "temperature_sweep": sweep, "calibrated": calibrated})
        comparison.comparison_figure(runs, base.num_samples, out / "comparison.png")
        # The colorizer decodes at the temperature calibrated on training images (the one the
        # calibrated verdict scores); the run's --temperature is kept for the record.
        bins_run, temperature = runs[-1], calibrated[-1]["temperature"]
        path = Path(flags.FLAGS.colorizer or out / "colorizer.msgpack")
        cfg = bins_run.config
        save_colorizer(path, bins_run.spec, bins_run.task_data.task, bins_run.state, temperature,
                       run_temperature=cfg.temperature, category=cfg.category,
                       epochs=cfg.epochs, loss=cfg.loss)
        log_line(f"wrote the Lab-bins colorizer to {path}, decoding at T={temperature:g} "
                 f"(calibrated on training images) (use: jaxcolor colorize IMAGE... "
                 f"--checkpoint {path} --out DIR [--temperature T])")
        return comparison.comparison_notes(rows, sweep, calibrated)

    run_grid(configs, "q7 — colourization in CIE Lab: regression and ab bins vs RGB-24",
             hooks=Hooks(at_end=answer))


if __name__ == "__main__":
    app.run(main)
