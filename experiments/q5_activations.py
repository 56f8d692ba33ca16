"""q5: per-block activation maps (every channel) of CNN and UNet for colourization, and UNet for
super-resolution, on a few test images — with measured statistics of what each block follows.

Each model is trained briefly first (``--epochs``, default 5).

    python experiments/q5_activations.py --image_dir=../shared/data/cifar10-jpeg
"""

from pathlib import Path

from absl import flags

from jaxcolor import cli, plots
from jaxcolor.analysis import activation_notes, activation_statistics, block_activations
from jaxcolor.experiment import (
    load_task_data,
    model_for,
    prepare_output_dir,
    train_and_evaluate,
    write_outputs,
)

cli.define_flags(default_model="cnn", default_epochs=5)
flags.DEFINE_integer("num_images", 3, "Test images whose activations are drawn.")
MODELS_AND_TASKS = [("cnn", "colourization"), ("unet", "colourization"), ("unet", "superres")]


def main(argv: list[str]) -> None:
    del argv
    base = cli.config_from_flags("q5_activations")
    out = prepare_output_dir(base.output_dir)
    count = flags.FLAGS.num_images
    runs, stats, figures = [], {}, []
    for task in ("colourization", "superres"):
        data = load_task_data(base.replace(task=task))
        for model_name in [m for m, t in MODELS_AND_TASKS if t == task]:
            (run,) = train_and_evaluate(base.replace(model=model_name, task=task), data)
            runs.append(run)
            variables = {"params": run.state.params, "batch_stats": run.state.batch_stats}
            maps = block_activations(model_for(run.config, data), variables,
                                     data.test_inputs[:count])
            label = f"{model_name} {task}"
            stats[label] = activation_statistics(maps, data.test_inputs[:count].mean(axis=-1))
            run.row["activation_statistics"] = stats[label]
            for i in range(count):
                name = f"activations_{model_name}_{task}_{i}.png"
                plots.activation_grid(data.test_inputs[i], {b: m[i] for b, m in maps.items()},
                                      Path(out) / name, title=f"{label}, test image {i}")
                figures.append(f"![{label} {i}]({name})")
    write_outputs(out, "q5 — activation maps per block", runs, num_samples=base.num_samples,
                  notes=activation_notes(stats) + "\n## Activation maps\n\n" + "\n".join(figures))
    print(f"wrote {out}/results.md and {len(figures)} activation figures", flush=True)


if __name__ == "__main__":
    cli.run(main)
