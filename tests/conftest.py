"""Shared fixtures: an isolated colour cache, the real-data path, and a script runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Identical programs compile once per test session (and once across subprocess script runs).
_JAX_CACHE = Path(os.environ.get("JAXCOLOR_TEST_JAX_CACHE", "/tmp/jaxcolor-test-jax-cache"))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_JAX_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("JAXCOLOR_TEST_DATA",
                                REPO.parent / "shared" / "data" / "cifar10-jpeg"))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("JAXCOLOR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("JAXCOLOR_IMAGE_DIR", raising=False)


@pytest.fixture
def real_data() -> Path:
    if not (REAL_DATA / "train" / "horse").is_dir():
        pytest.skip(f"real CIFAR-10 folder not found at {REAL_DATA} (set JAXCOLOR_TEST_DATA)")
    return REAL_DATA


def run_script(name: str, *args: str, cache_dir: Path | None = None
               ) -> subprocess.CompletedProcess:
    """Run ``experiments/<name>.py`` in a subprocess, as a user would."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    if cache_dir is not None:
        env["JAXCOLOR_CACHE_DIR"] = str(cache_dir)
    return subprocess.run([sys.executable, str(REPO / "experiments" / f"{name}.py"), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


def write_folder(root, sizes=None, fmt="png", side=32):
    """root/{train,test}/{horse,cat}/NNNN.<fmt> with known pixel values."""
    sizes = sizes or {"train": 5, "test": 3}
    for split, count in sizes.items():
        for label, category in enumerate(["horse", "cat"]):
            folder = root / split / category
            folder.mkdir(parents=True)
            for i in range(count):
                value = 10 * i + label
                Image.fromarray(np.full((side, side, 3), value, np.uint8)).save(
                    folder / f"{i:04d}.{fmt}")
    return root


def zhang_sized_bins() -> np.ndarray:
    """313 grid bins (as many as Zhang et al.'s pts_in_hull.npy): the 261 sRGB bins and the 52
    grid points nearest the origin outside them."""
    from jaxcolor import lab

    bins = lab.ab_bins()
    grid = np.stack(np.meshgrid(np.arange(-12, 13), np.arange(-12, 13), indexing="ij"),
                    -1).reshape(-1, 2) * 10.0
    outside = grid[~(grid[:, None] == bins[None]).all(-1).any(-1)]
    extra = outside[np.argsort(np.abs(outside).sum(-1), kind="stable")[:52]]
    return np.concatenate([bins, extra]).astype(np.float32)
