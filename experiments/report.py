"""Gather every results/*/results.json into RESULTS.md, beside the assignment's reference numbers;
publish each experiment's folder to docs/results (versioned) and link the copies.

    python experiments/report.py [--results_dir=results] [--output=RESULTS.md] [--check]
"""

from pathlib import Path

from absl import flags

from answers import report
from jaxcolor import app
from jaxcolor.errors import UserError
from jaxcolor.results import write_text_atomic

flags.DEFINE_string("results_dir", "results", "Folder holding <experiment>/results.json.")
flags.DEFINE_string("output", "RESULTS.md", "The Markdown file to write.")
flags.DEFINE_string("publish_dir", "docs/results", "Copy each experiment's folder here and "
                    "link to the copy ('' to link results/ directly).")
flags.DEFINE_bool("check", False, "Write nothing; fail when --output or --publish_dir differ "
                  "from what the report would write now, or a link's target is missing.")


def main(argv: list[str]) -> None:
    del argv
    cfg = flags.FLAGS
    results_dir, output = Path(cfg.results_dir), Path(cfg.output)
    publish_dir = Path(cfg.publish_dir) if cfg.publish_dir else None
    source = publish_dir or results_dir  # what the report links
    copying = publish_dir is not None and publish_dir.resolve() != results_dir.resolve()
    if not results_dir.is_dir() and not (cfg.check and source.is_dir()):
        raise UserError(f"--results_dir={results_dir} does not exist; run an experiment first.")
    if cfg.check:
        problems = (report.publishing_differences(results_dir, publish_dir)
                    if copying and results_dir.is_dir() else [])
        if not output.exists() or output.read_text() != report.build_results_markdown(
                source, output.parent):
            problems.append(f"{output}: not what the report writes from {source}")
        if output.exists():
            problems += [f"{output}: links to missing {target}"
                         for target in report.missing_links(output)]
        for problem in problems:
            print(problem)
        if problems:
            raise UserError(f"{len(problems)} differences (listed above); python "
                            f"experiments/report.py --results_dir={results_dir} writes them "
                            "again.")
        print(f"{output} and {source} are what the report writes")
        return
    if copying:
        report.publish(results_dir, publish_dir)
    write_text_atomic(output, report.build_results_markdown(source, output.parent))
    print(f"wrote {output}")


if __name__ == "__main__":
    app.run(main)
