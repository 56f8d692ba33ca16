"""Gather every results/*/results.json into RESULTS.md, beside the assignment's reference numbers.

    python experiments/report.py [--results_dir=results] [--output=RESULTS.md]
"""

from pathlib import Path

from absl import flags

from answers.report import build_results_markdown
from jaxcolor import app
from jaxcolor.errors import UserError
from jaxcolor.results import write_text_atomic

flags.DEFINE_string("results_dir", "results", "Folder holding <experiment>/results.json.")
flags.DEFINE_string("output", "RESULTS.md", "The Markdown file to write.")
flags.DEFINE_string("publish_dir", "docs/results", "Copy each experiment's folder here and "
                    "link to the copy ('' to link results/ directly).")
flags.DEFINE_string("note", "", "Text placed under the title (e.g. how the runs were made).")


def main(argv: list[str]) -> None:
    del argv
    results_dir = Path(flags.FLAGS.results_dir)
    if not results_dir.is_dir():
        raise UserError(f"--results_dir={results_dir} does not exist; run an experiment first.")
    output = Path(flags.FLAGS.output)
    write_text_atomic(output, build_results_markdown(
        results_dir, output.parent, flags.FLAGS.note,
        Path(flags.FLAGS.publish_dir) if flags.FLAGS.publish_dir else None))
    print(f"wrote {output}")


if __name__ == "__main__":
    app.run(main)
