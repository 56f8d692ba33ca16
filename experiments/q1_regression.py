"""q1: colourization as RGB regression (RegressionCNN, MSE); why RGB + MSE is a poor fit.

One 50-epoch run reports epochs 15, 25 and 50: with Adam at a constant learning rate its first
E epochs are exactly an E-epoch run.

    python experiments/q1_regression.py --image_dir=../shared/data/cifar10-jpeg
"""

from absl import flags

from jaxcolor import cli
from jaxcolor.analysis import regression_notes
from jaxcolor.experiment import RunOutput, run_grid
from jaxcolor.tasks import TaskData

cli.define_flags(default_model="regression_cnn", default_epochs=50)
flags.DEFINE_string("report_epochs", "15,25", "Also report these epochs of the run.")


def main(argv: list[str]) -> None:
    del argv
    report_epochs = tuple(cli.parse_list("report_epochs", flags.FLAGS.report_epochs))
    cfg = cli.config_from_flags("q1_regression", task="regression", report_epochs=report_epochs)

    def notes(runs: list[RunOutput], data: TaskData) -> str:
        return regression_notes([run.row for run in runs], data.test_images, data.palette)

    run_grid([cfg], "q1 — colourization as RGB regression (MSE)", notes=notes)


if __name__ == "__main__":
    cli.run(main)
