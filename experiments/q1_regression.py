"""q1: colourization as RGB regression (RegressionCNN, MSE); why RGB + MSE is a poor fit.

One 50-epoch run reports epochs 15, 25 and 50: with Adam at a constant learning rate its first
E epochs are exactly an E-epoch run.

    python experiments/q1_regression.py --image_dir=../shared/data/cifar10-jpeg
"""

from absl import flags

from answers.q1 import regression_notes
from jaxcolor import app
from jaxcolor.runner import Hooks, RunOutput, cli, run_grid

cli.define_flags(default_model="regression_cnn", default_epochs=50)
flags.DEFINE_string("report_epochs", "15,25", "Also report these epochs of the run.")


def main(argv: list[str]) -> None:
    del argv
    report_epochs = tuple(app.parse_list("report_epochs", flags.FLAGS.report_epochs))
    cfg = cli.config_from_flags("q1_regression", task="regression", report_epochs=report_epochs)

    def answer(runs: list[RunOutput], out) -> str:
        data = runs[-1].task_data
        return regression_notes([run.row for run in runs], data.test_images, data.task.palette)

    run_grid([cfg], "q1 — colourization as RGB regression (MSE)", hooks=Hooks(at_end=answer))


if __name__ == "__main__":
    app.run(main)
