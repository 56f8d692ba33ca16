"""q8: the assignment's newer edition — PoolUpsampleNet, ConvTransposeNet and its UNet compared
(with q2's CNN and q3's U-Net), padding for other kernel sizes, batch size vs validation loss.

    python experiments/q8_newer_edition.py --image_dir=../shared/data/cifar10-jpeg
"""

from pathlib import Path

from absl import flags

from answers import q8
from jaxcolor import app
from jaxcolor.results import read_rows
from jaxcolor.runner import Hooks, RunOutput, cli, run_grid

EXPERIMENT = "q8_newer_edition"
cli.define_flags(default_model="unet_transpose")
flags.DEFINE_string("models", "pool_upsample,conv_transpose,unet_transpose",
                    "The nets compared at --batch_size.")
flags.DEFINE_string("batch_sizes", "50", "Other batch sizes to train --model with.")
flags.DEFINE_string("compare_with", None, "Comma-separated results.json files of the older "
                    "edition's runs (default: q2_classification's and q3_unet's beside "
                    "--output_dir).")


def main(argv: list[str]) -> None:
    del argv
    cfg = cli.config_from_flags(EXPERIMENT)
    models = app.parse_list("models", flags.FLAGS.models, str)
    configs = [cfg.replace(model=model) for model in models]
    configs += [cfg.replace(batch_size=size)
                for size in app.parse_list("batch_sizes", flags.FLAGS.batch_sizes)
                if cfg.replace(batch_size=size) not in configs]

    def answer(runs: list[RunOutput], out: Path) -> str:
        rows = [run.row for run in runs]
        sources = (app.parse_list("compare_with", flags.FLAGS.compare_with, str)
                   if flags.FLAGS.compare_with else
                   [str(Path(cfg.output_dir).parent / name / "results.json")
                    for name in ("q2_classification", "q3_unet")])
        earlier = [row for source in sources for row in read_rows(Path(source))
                   if row.get("model") in ("cnn", "unet") and row.get("task") == cfg.task]
        return "\n".join([
            q8.comparison_notes(rows, earlier, sources),
            q8.padding_notes(q8.padding_checks()),
            q8.batch_size_notes([row for row in rows if row["model"] == cfg.model])])

    run_grid(configs, "q8 — the newer edition: strided and transposed convolutions",
             hooks=Hooks(at_end=answer))


if __name__ == "__main__":
    app.run(main)
