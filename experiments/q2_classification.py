"""q2: colourization as 24-colour per-pixel classification with the CNN (cross-entropy).

    python experiments/q2_classification.py --image_dir=../shared/data/cifar10-jpeg
"""

from absl import flags

from jaxcolor import app
from jaxcolor.runner import cli, run_grid

cli.define_flags(default_model="cnn")
flags.DEFINE_string("models", None, "Comma-separated models to compare (default: --model).")


def main(argv: list[str]) -> None:
    del argv
    cfg = cli.config_from_flags("q2_classification")
    models = flags.FLAGS.models.split(",") if flags.FLAGS.models else [cfg.model]
    configs = [cfg.replace(model=model.strip()) for model in models]
    run_grid(configs, "q2 — colourization as classification over 24 colours")


if __name__ == "__main__":
    app.run(main)
