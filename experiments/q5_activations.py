"""q5: per-block activation maps (every channel) of CNN and UNet for colourization, and UNet for
super-resolution, on a few test images — with measured statistics of what each block follows.

Each model is trained briefly first (``--epochs``, default 5).

    python experiments/q5_activations.py --image_dir=../shared/data/cifar10-jpeg
"""

from pathlib import Path

from absl import flags

from answers.q5 import activation_notes, activation_statistics, block_activations
from jaxcolor import app
from jaxcolor.models import build_model
from jaxcolor.runner import Hooks, RunOutput, cli, plots, run_grid

cli.define_flags(default_model="cnn", default_epochs=5)
flags.DEFINE_integer("num_images", 3, "Test images whose activations are drawn.")
MODELS_AND_TASKS = [("cnn", "colourization"), ("unet", "colourization"), ("unet", "superres")]


def main(argv: list[str]) -> None:
    del argv
    base = cli.config_from_flags("q5_activations")
    count = flags.FLAGS.num_images

    def draw_and_measure(run: RunOutput, out: Path) -> dict:
        inputs = run.task_data.test_inputs[:count]
        variables = {"params": run.state.params, "batch_stats": run.state.batch_stats}
        maps = block_activations(build_model(run.spec), variables, inputs)
        for i in range(count):
            plots.activation_grid(inputs[i], {b: m[i] for b, m in maps.items()},
                                  out / figure_name(run, i), title=f"{label(run)}, test image {i}")
        return {"activation_statistics": activation_statistics(maps, inputs.mean(axis=-1))}

    def answer(runs: list[RunOutput], out: Path) -> str:
        figures = [f"![{label(run)} {i}]({figure_name(run, i)})" for run in runs
                   for i in range(count)]
        return (activation_notes({label(run): run.row["activation_statistics"] for run in runs})
                + "\n## Activation maps\n\n" + "\n".join(figures))

    run_grid([base.replace(model=model, task=task) for model, task in MODELS_AND_TASKS],
             "q5 — activation maps per block", hooks=Hooks(draw_and_measure, answer))


def label(run: RunOutput) -> str:
    return f"{run.config.model} {run.config.task}"


def figure_name(run: RunOutput, index: int) -> str:
    return f"activations_{run.config.model}_{run.config.task}_{index}.png"


if __name__ == "__main__":
    app.run(main)
