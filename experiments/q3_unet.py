"""q3: the U-Net (skip connections) for 24-colour colourization, optionally over batch sizes.

    python experiments/q3_unet.py --image_dir=../shared/data/cifar10-jpeg --batch_sizes=100,50
"""

from pathlib import Path

from absl import flags

from answers.q3 import block_gradient_norms, skip_connection_notes
from jaxcolor import app
from jaxcolor.models import build_model
from jaxcolor.results import read_rows
from jaxcolor.runner import Hooks, RunOutput, cli, model_spec, run_grid
from jaxcolor.tasks import TaskData

cli.define_flags(default_model="unet")
flags.DEFINE_string("batch_sizes", None, "Comma-separated batch sizes to compare "
                    "(default: --batch_size only).")
flags.DEFINE_string("compare_with", None, "q2 results.json to compare with "
                    "(default: <output_dir>/../q2_classification/results.json).")


def main(argv: list[str]) -> None:
    del argv
    cfg = cli.config_from_flags("q3_unet")
    batch_sizes = (app.parse_list("batch_sizes", flags.FLAGS.batch_sizes)
                   if flags.FLAGS.batch_sizes else [cfg.batch_size])
    q2_path = Path(flags.FLAGS.compare_with or
                   Path(cfg.output_dir).parent / "q2_classification" / "results.json")

    norms = {}

    def measure_norms(data: TaskData) -> None:  # fresh models: alongside the training
        batch = slice(0, min(cfg.batch_size, len(data.train_inputs)))
        norms.update(block_gradient_norms(
            {name: build_model(model_spec(cfg.replace(model=name), data.task))
             for name in ("cnn", "unet")},
            data.train_inputs[batch], data.train_targets[batch], data.task.objective, cfg.seed))

    def answer(runs: list[RunOutput], out: Path) -> str:
        cnn_rows = [row for row in read_rows(q2_path) if row.get("model") == "cnn"]
        return skip_connection_notes([run.row for run in runs], cnn_rows, str(q2_path), norms)

    run_grid([cfg.replace(batch_size=size) for size in batch_sizes],
             "q3 — U-Net: skip connections for colourization",
             hooks=Hooks(at_end=answer, alongside=measure_norms))


if __name__ == "__main__":
    app.run(main)
