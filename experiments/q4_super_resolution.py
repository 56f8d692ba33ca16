"""q4: super-resolution as colour classification: blurry 8×8→32×32 RGB in, 24 colour classes out.

CNN and UNet (3 input channels) against nearest and bilinear interpolation of the 8×8 image.

    python experiments/q4_super_resolution.py --image_dir=../shared/data/cifar10-jpeg
"""

from absl import flags

from jaxcolor import cli
from jaxcolor.analysis import superres_baselines, superres_notes
from jaxcolor.experiment import RunOutput, run_grid
from jaxcolor.tasks import TaskData

cli.define_flags(default_model="cnn")
flags.DEFINE_string("models", "cnn,unet", "Comma-separated models to train.")


def main(argv: list[str]) -> None:
    del argv
    cfg = cli.config_from_flags("q4_super_resolution", task="superres")
    configs = [cfg.replace(model=name.strip()).validate()
               for name in flags.FLAGS.models.split(",")]
    baselines: list[dict] = []  # computed once, on the first notes call

    def notes(runs: list[RunOutput], data: TaskData) -> str:
        baselines[:] = baselines or superres_baselines(data)
        return superres_notes([run.row for run in runs], baselines)

    run_grid(configs, "q4 — super-resolution (8×8 → 32×32) as colour classification",
             notes=notes)


if __name__ == "__main__":
    cli.run(main)
