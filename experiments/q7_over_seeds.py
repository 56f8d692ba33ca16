"""q7 over training seeds: does the Lab-bins verdict hold for every seed, or only on average?

Reads every q7 result folder under --results_dir, groups the runs that differ only in their
seed, and for each group of two or more writes the verdict per seed (at the fixed and at the
calibrated temperature) and each criterion's mean ± sd and worst margin over the seeds.

    python experiments/q7_lab.py --image_dir=../shared/data/cifar10-jpeg --seed=1 \\
        --output_dir=results/q7_lab_seed1          # one run per seed (seed 0: results/q7_lab)
    python experiments/q7_over_seeds.py
"""

from pathlib import Path

from absl import flags

from answers import q7 as comparison
from jaxcolor import app
from jaxcolor.errors import UserError
from jaxcolor.results import write_results, write_text_atomic

flags.DEFINE_string("results_dir", "results", "Folder holding the q7 result folders.")
flags.DEFINE_string("output_dir", "results/q7_over_seeds", "Where results.md/.json go.")


def main(argv: list[str]) -> None:
    del argv
    results_dir = Path(flags.FLAGS.results_dir)
    groups = [runs for runs in comparison.runs_by_settings(results_dir) if len(runs) > 1]
    if not groups:
        raise UserError(f"--results_dir={results_dir} holds no two q7 runs that differ only in "
                        "their seed; run experiments/q7_lab.py with --seed=N "
                        "--output_dir=results/q7_lab_seedN for a second seed.")
    lines = ["# q7 over training seeds", "",
             "The q7 verdict (the Lab-bins model against the best RGB-24 rendering on "
             "class-rebalanced AuC and colourfulness closeness, PSNR ≥ 24 dB) for every group of "
             "q7 runs that differ only in `--seed`.", ""]
    records = []
    for runs in groups:
        section, group_records = comparison.seed_summary(runs)
        lines += section
        records += [{"settings": runs[0].settings, **record} for record in group_records]
    out = Path(flags.FLAGS.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "results.md", "\n".join(lines))
    write_results(out, records)
    print(f"wrote {out / 'results.md'} and results.json ({len(groups)} group(s) of seeds)")


if __name__ == "__main__":
    app.run(main)
