"""q6(c): evaluation closer to human judgement, and a loss beyond plain cross-entropy.

Trains each model with plain and class-rebalanced cross-entropy and reports PSNR, SSIM,
colourfulness (vs the ground truth's) and the ab-error AuC beside pixel accuracy; rows of q2,
q3 and q4 results found under the results folder are listed with the same metrics.

    python experiments/q6c_perceptual.py --image_dir=../shared/data/cifar10-jpeg
"""

from pathlib import Path

from absl import flags

from answers.q6 import perceptual_notes
from jaxcolor import app
from jaxcolor.results import read_rows
from jaxcolor.runner import Hooks, cli, run_grid
from jaxcolor.tasks import LOSSES

cli.define_flags(default_model="cnn")
flags.DEFINE_string("models", "cnn", "Comma-separated models to train with each loss.")
EARLIER = ("q2_classification", "q3_unet", "q4_super_resolution")


def main(argv: list[str]) -> None:
    del argv
    base = cli.config_from_flags("q6c_perceptual")
    configs = [base.replace(model=model.strip(), loss=loss)
               for model in flags.FLAGS.models.split(",") for loss in LOSSES]
    results = Path(base.output_dir).parent
    earlier = [row for name in EARLIER for row in read_rows(results / name / "results.json")]
    run_grid(configs, "q6(c) — perceptual metrics and a class-rebalanced loss",
             hooks=Hooks(at_end=lambda runs, out: perceptual_notes([r.row for r in runs],
                                                                   earlier)))


if __name__ == "__main__":
    app.run(main)
