"""Mixed precision: q2's CNN, q3's UNet and the newer edition's UNet trained in float32 and in
bfloat16 (--precision) over several seeds, and whether bfloat16 lands within noise of float32.

    python experiments/precision.py --image_dir=../shared/data/cifar10-jpeg [--seeds=0,1,2]
"""

from absl import flags

from answers import precision
from jaxcolor import app
from jaxcolor.runner import Hooks, cli, run_grid

EXPERIMENT = "precision"
cli.define_flags(default_model="cnn")
flags.DEFINE_string("models", "cnn,unet,unet_transpose", "Models to compare (--model is not "
                    "used).")
flags.DEFINE_string("precisions", "float32,bfloat16", "Precisions to compare (--precision is "
                    "not used).")
flags.DEFINE_string("seeds", "0,1,2", "Training seeds of every model and precision.")


def main(argv: list[str]) -> None:
    del argv
    cfg = cli.config_from_flags(EXPERIMENT)
    configs = [cfg.replace(model=model, precision=name, seed=seed)
               for model in app.parse_list("models", flags.FLAGS.models, str)
               for name in app.parse_list("precisions", flags.FLAGS.precisions, str)
               for seed in app.parse_list("seeds", flags.FLAGS.seeds, allow_zero=True)]
    run_grid(configs, "bfloat16 against float32, over seeds",
             hooks=Hooks(at_end=lambda runs, out: precision.precision_notes(
                 [run.row for run in runs])))


if __name__ == "__main__":
    app.run(main)
