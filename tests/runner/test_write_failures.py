"""A full disk under a run: one error line naming the path and what is kept, no traceback and
no crash; the same command goes on once there is room. The disk is real: a small tmpfs,
mounted where the test may (as root), else skipped."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

SCRIPT = [sys.executable, str(REPO / "experiments" / "q2_classification.py"),
          "--source=synthetic", "--epochs=4", "--num_samples=2"]


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs: room for two of these checkpoints, not three."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def run(output_dir):
    return subprocess.run([*SCRIPT, f"--output_dir={output_dir}"], capture_output=True,
                          text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})


@pytest.mark.slow
def test_a_full_disk_is_one_line_keeps_what_was_written_and_the_run_goes_on(small_disk):
    out = small_disk / "out"
    for attempt in ("filled", "still full"):
        result = run(out)
        assert result.returncode == 2, (attempt, result.returncode, result.stderr)
        assert result.stderr.startswith("error: cannot write ") and result.stderr.count(
            "\n") == 1, (attempt, result.stderr)
        assert str(small_disk) in result.stderr and "No space left on device" in result.stderr
        assert not list(out.rglob("*orbax-checkpoint-tmp*")), attempt  # room made again
    (run_dir,) = (out / "checkpoints").iterdir()
    kept = sorted(int(path.name) for path in run_dir.iterdir() if path.name.isdigit())
    assert kept and f"epoch {kept[-1]}'s checkpoint is kept there" in result.stderr

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = run(out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {kept[-1]}" in resumed.stdout
    assert json.loads((out / "results.json").read_text())[0]["epochs"] == 4
