"""BENCHMARKS.md cites its raw logs: each named log exists and docs/benchmarks holds no other."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_md_and_its_logs_match():
    text = (ROOT / "BENCHMARKS.md").read_text()
    cited = set(re.findall(r"docs/benchmarks/([\w.\-]+)", text))
    kept = {path.name for path in (ROOT / "docs" / "benchmarks").iterdir()}
    assert sorted(cited - kept) == [], "BENCHMARKS.md names logs that are missing"
    assert sorted(kept - cited) == [], "docs/benchmarks holds logs BENCHMARKS.md does not cite"


def test_benchmarks_md_commands_name_existing_scripts():
    text = (ROOT / "BENCHMARKS.md").read_text()
    scripts = set(re.findall(r"python (benchmarks/\w+\.py)", text))
    assert scripts and all((ROOT / script).is_file() for script in scripts)
