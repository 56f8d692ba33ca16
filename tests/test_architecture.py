"""The code's shape: ruff clean, and the import-linter contracts of pyproject.toml kept (layers,
no imports of the experiments, the CPU layer protected, the char-RNN independent, no cycles)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


@pytest.mark.parametrize("command", [["ruff", "check", "."], ["lint-imports"]])
def test_tool_passes(command):
    # The test extra installs the tools beside this Python, also when its environment is not
    # activated (its bin folder then is not on PATH).
    tool = shutil.which(command[0], path=str(Path(sys.executable).parent)) or shutil.which(
        command[0])
    if tool is None:
        pytest.skip(f"{command[0]} is not installed (pip install -e '.[test]')")
    result = subprocess.run([tool, *command[1:]], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
