"""The code's shape: ruff clean, and the import-linter contracts of pyproject.toml kept (layers,
no imports of the experiments, the CPU layer protected, the char-RNN independent, no cycles)."""

import shutil
import subprocess

import pytest
from conftest import REPO


@pytest.mark.parametrize("command", [["ruff", "check", "."], ["lint-imports"]])
def test_tool_passes(command):
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed (pip install -e '.[test]')")
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
