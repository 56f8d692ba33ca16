"""The main job's default source on a new machine, then again: ``python experiments/q3_unet.py
--batch_size=50 --epochs=1`` with a fresh HOME (so tfds's data folder and jaxcolor's caches are
empty), run twice; prints each run's data lines and its time breakdown.

The first run downloads CIFAR-10 through tfds and prepares it. This machine cannot reach the
download, so the archive is built here in CIFAR-10's binary layout from the images of
``--image_dir`` (the same 60,000 images, re-encoded) and served where tfds's downloader would
have fetched it (``tests/tfds_download.py``: only the network is replaced).

    python benchmarks/tfds_first_run.py --image_dir=../shared/data/cifar10-jpeg
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from tfds_download import ARCHIVE_ENV, folder_batches, write_archive  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image_dir", required=True)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tfds_first_run_"))
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text(
        ).splitlines() if line.startswith("model name")), platform.machine())
    print(f"commit {commit}, {cpu} "
          f"({os.cpu_count()} cores), Python {platform.python_version()}, "
          f"TensorFlow {'importable' if importlib.util.find_spec('tensorflow') else 'absent'}")
    start = time.perf_counter()
    archive = write_archive(scratch / "cifar-10-binary.tar.gz", folder_batches(args.image_dir))
    print(f"archive: {archive.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - start:.1f}s")
    env = {**os.environ, "HOME": str(scratch / "home"), ARCHIVE_ENV: str(archive),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
           "JAX_PLATFORMS": "cpu"}
    for key in ("TFDS_DATA_DIR", "JAXCOLOR_CACHE_DIR", "JAXCOLOR_IMAGE_DIR",
                "JAX_COMPILATION_CACHE_DIR"):
        env.pop(key, None)
    for run in range(1, args.runs + 1):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "tfds_download", "experiments/q3_unet.py",
             "--batch_size=50", "--epochs=1", "--noresume", f"--output_dir={scratch / 'results'}"],
            cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        lines = [line for line in result.stdout.splitlines()
                 if line.startswith(("data:", "time:"))]
        print(f"run {run}: exit {result.returncode}, {wall:.1f}s wall")
        for line in lines:
            print(f"  {line}")
        if result.returncode:
            print(result.stderr[-3000:])
            sys.exit(result.returncode)


if __name__ == "__main__":
    main()
