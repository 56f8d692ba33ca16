"""q4: super-resolution as colour classification: blurry 8×8→32×32 RGB in, 24 colour classes out.

CNN and UNet (3 input channels) against nearest and bilinear interpolation of the 8×8 image.

    python experiments/q4_super_resolution.py --image_dir=../shared/data/cifar10-jpeg
"""

from absl import flags

from answers.q4 import superres_baselines, superres_notes
from jaxcolor import app
from jaxcolor.runner import Hooks, RunOutput, cli, run_grid

cli.define_flags(default_model="cnn")
flags.DEFINE_string("models", "cnn,unet", "Comma-separated models to train.")


def main(argv: list[str]) -> None:
    del argv
    cfg = cli.config_from_flags("q4_super_resolution", task="superres")
    configs = [cfg.replace(model=name.strip())
               for name in flags.FLAGS.models.split(",")]
    def answer(runs: list[RunOutput], out) -> str:
        return superres_notes([run.row for run in runs], superres_baselines(runs[0].task_data))

    run_grid(configs, "q4 — super-resolution (8×8 → 32×32) as colour classification",
             hooks=Hooks(at_end=answer))


if __name__ == "__main__":
    app.run(main)
