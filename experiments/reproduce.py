"""Every published result from one commit: runs each published experiment at its published
settings in dependency order (skipping what is done at this commit, resuming what was
interrupted), then rebuilds RESULTS.md and docs/results.

    python experiments/reproduce.py [--list] [--only=q3,q7] [--results_dir=results]
"""

import dataclasses
import subprocess
import sys
from pathlib import Path

from absl import flags

from configs.published import IMAGELESS, RUNS
from jaxcolor import app
from jaxcolor.errors import UserError
from jaxcolor.results import code_commit
from jaxcolor.runner.sweep import (
    Run,
    check_order,
    is_done,
    run_sweep,
    select,
    with_needs,
)

flags.DEFINE_bool("list", False, "Print each run's command line and run nothing.")
flags.DEFINE_list("only", [], "Runs to make (names, or questions: q7 = every q7_* run), with "
                  "the runs they need that are not done.")
flags.DEFINE_string("results_dir", "results", "Folder of the runs' folders.")
flags.DEFINE_string("image_dir", "../shared/data/cifar10-jpeg",
                    "CIFAR-10 image folder of the published runs ('' for tfds).")
flags.DEFINE_bool("allow_dirty", False, "Run although tracked files differ from the commit.")

def with_images(runs: list[Run], image_dir: str) -> list[Run]:
    """The runs of scripts that train on CIFAR-10 read ``image_dir`` ('' : tfds)."""
    return [dataclasses.replace(run, args=(*run.args, f"--image_dir={image_dir}"))
            if image_dir and run.script not in IMAGELESS else run for run in runs]


def main(argv: list[str]) -> None:
    del argv
    check_order(RUNS)
    cfg, results = flags.FLAGS, Path(flags.FLAGS.results_dir)
    runs = with_images(RUNS, cfg.image_dir)
    if cfg.list:
        print("\n".join(run.command_line(cfg.results_dir) for run in select(runs, cfg.only)))
        return
    commit = code_commit()
    if commit is None or (commit.endswith("-dirty") and not cfg.allow_dirty):
        raise UserError("the results must come from one commit: run from a git checkout with "
                        "no uncommitted changes to tracked files (or pass --allow_dirty).")
    run_sweep(with_needs(select(runs, cfg.only), runs, results, commit), results, commit,
              log=lambda line: print(line, flush=True))
    if missing := [run.name for run in runs if not is_done(run, results, commit)]:
        print(f"RESULTS.md not rebuilt: {len(missing)} published runs are not done at this "
              f"commit ({', '.join(missing)}).")
        return
    subprocess.run([sys.executable, str(Path(__file__).with_name("report.py")),
                    f"--results_dir={cfg.results_dir}"], check=True)


if __name__ == "__main__":
    app.run(main)
