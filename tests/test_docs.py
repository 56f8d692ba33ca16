"""The documentation: a README a newcomer reads in two minutes whose commands run, links that
resolve, and repository paths that exist wherever the docs or docstrings name them."""

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200
DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
# A repository path as docs and docstrings write it (folders of generated results excluded:
# experiments/report.py --check keeps docs/results and RESULTS.md's links in step).
NAMED_PATH = re.compile(
    r"(?<![\w/.\-])((?:jaxcolor|experiments|tests|benchmarks|docs|launch|notebooks)/"
    r"[\w/.\-]*\.(?:py|md|sh|ipynb|cc|json|png|jpg|log|yaml|toml))")
SOURCES = [path for folder in ("jaxcolor", "experiments", "tests", "benchmarks", "launch")
           for path in (ROOT / folder).rglob("*") if path.suffix in (".py", ".sh", ".yaml", ".cc")]


def test_the_readme_fits_two_minutes_of_reading():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_MAX_LINES


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_relative_link_resolves(doc):
    targets = re.findall(r"\]\(([^)#\s]+)", doc.read_text())
    broken = [target for target in targets
              if "://" not in target and not (doc.parent / target).exists()]
    assert broken == []


def test_every_repository_path_named_in_docs_and_docstrings_exists():
    missing = sorted({(str(path.relative_to(ROOT)), named)
                      for path in [*DOCS, *SOURCES] for named in NAMED_PATH.findall(
                          path.read_text(errors="replace"))
                      if not named.startswith("docs/results/") and not (ROOT / named).exists()})
    assert missing == []


PARSE_FLAGS = """
import contextlib, os, runpy, sys
from absl import app, flags
sys.path.insert(0, os.path.dirname(sys.argv[1]))  # as `python script.py` does
app.define_help_flags()
runpy.run_path(sys.argv[1], run_name="dry_run")
with contextlib.suppress(SystemExit):  # a help flag prints the help and exits
    flags.FLAGS(sys.argv[1:])
print("parsed")
"""


def _readme_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(part.strip()) for line in lines for part in line.split("&&") if part]


@pytest.mark.slow
def test_the_readme_commands_run_as_written():
    """Each README command in a dry form: pip's extras exist, each script parses the flags it
    is shown with, and the test command is this suite's."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    commands = _readme_commands()
    assert ["pytest", "tests/"] in commands
    for command in commands:
        if command[:3] == ["pip", "install", "-e"]:
            assert re.fullmatch(r"\.\[(\w+)\]", command[3])[1] in extras
        elif command[0] == "python":  # the script loaded and its flags parsed, not run
            result = subprocess.run([sys.executable, "-c", PARSE_FLAGS, *command[1:]], cwd=ROOT,
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 0 and result.stdout.endswith("parsed\n"), (
                command, result.stderr)
        else:
            assert command == ["pytest", "tests/"], command


def test_the_readme_results_are_the_published_rows():
    """The README's small table quotes docs/results (RESULTS.md's rows), formatted as there."""
    from jaxcolor.results import format_cell, read_rows

    table = re.search(r"\| script \| model \| batch \| epochs \| val loss \| val acc % \|\n"
                      r"\|[-|]+\|\n((?:\|.*\|\n)+)", (ROOT / "README.md").read_text())[1]
    for line in table.splitlines():
        script, model, batch, epochs, val_loss, val_acc = (
            cell.strip() for cell in line.strip("|").split("|"))
        (row,) = [row for row in read_rows(ROOT / "docs" / "results" / script / "results.json")
                  if row["model"] == model and row["batch_size"] == int(batch)
                  and row["epochs"] == int(epochs)]
        assert (format_cell(row["val_loss"]), format_cell(row["val_accuracy"])) == (
            val_loss, val_acc), line


def test_every_benchmarks_section_a_docstring_names_exists():
    """Docstrings and comments keep the reason and name the BENCHMARKS.md section that holds
    the figure, as BENCHMARKS.md and the section's quoted title."""
    headings = re.findall(r"^## (.+)$", (ROOT / "BENCHMARKS.md").read_text(), re.M)
    named = {(str(path.relative_to(ROOT)), " ".join(name.split()))
             for path in SOURCES
             for name in re.findall(r'BENCHMARKS\.md, "([^"]+)"',
                                    re.sub(r"\n\s*#?\s*", " ", path.read_text()))}
    assert named and [item for item in sorted(named)
                      if not any(heading.startswith(item[1]) for heading in headings)] == []
