"""Shared fixtures: an isolated colour cache, the real-data path, and a script runner."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
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
# The tests' programs are tiny: XLA:CPU's LLVM optimizations cost far more compile time than
# they save at run time (docs/testing.md), and they change no semantics.
# Set for this process and every subprocess the tests start; speed is measured in benchmarks/.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

# The suite runs as a user without TensorFlow does, whether or not it is installed: tfds takes
# other code paths when it can import it (tests/data/test_tfds_source.py runs tfds's preparation
# in a subprocess with it importable too).
import without_tensorflow  # noqa: E402, F401

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "experiments"))  # the scripts' own answers package
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


@dataclasses.dataclass(frozen=True)
class ScriptResult:
    returncode: int
    stdout: str
    stderr: str


def run_script(name: str, *args: str, cache_dir: Path | None = None,
               in_process: bool = True) -> ScriptResult | subprocess.CompletedProcess:
    """Run ``experiments/<name>.py`` with ``args`` as a user would: by default in this process
    (the script imported afresh, its flags parsed, its ``main`` called through
    ``jaxcolor.app.run_main``, output captured, its flags removed again), so runs share one
    Python and JAX start-up and compiled programs; ``in_process=False`` starts a new
    interpreter."""
    if not in_process:
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        if cache_dir is not None:
            env["JAXCOLOR_CACHE_DIR"] = str(cache_dir)
        return subprocess.run([sys.executable, str(REPO / "experiments" / f"{name}.py"), *args],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    from absl import flags

    from jaxcolor import app

    path = REPO / "experiments" / f"{name}.py"
    defined_before = set(flags.FLAGS)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        if cache_dir is not None:
            stack.enter_context(_environment("JAXCOLOR_CACHE_DIR", str(cache_dir)))
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        try:
            spec = importlib.util.spec_from_file_location(f"experiment_{name}", path)
            script = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(script)
            try:
                argv = flags.FLAGS([str(path), *args])
            except flags.Error as err:  # as absl's app.run: one line, status 1
                print(f"FATAL Flags parsing error: {err}", file=sys.stderr)
                return ScriptResult(1, stdout.getvalue(), stderr.getvalue())
            code = app.run_main(script.main, argv)
        finally:
            for flag in set(flags.FLAGS) - defined_before:
                delattr(flags.FLAGS, flag)
    return ScriptResult(code, stdout.getvalue(), stderr.getvalue())


@contextlib.contextmanager
def _environment(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def write_folder(root, sizes=None, fmt="png", side=32):
    """root/{train,test}/{horse,cat}/NNNN.<fmt>, each of one known colour (red channel 10 * i +
    label)."""
    sizes = sizes or {"train": 5, "test": 3}
    for split, count in sizes.items():
        for label, category in enumerate(["horse", "cat"]):
            folder = root / split / category
            folder.mkdir(parents=True)
            for i in range(count):
                value = 10 * i + label
                colour = np.array([value, 255 - value, 128], np.uint8)
                Image.fromarray(np.full((side, side, 3), colour, np.uint8)).save(
                    folder / f"{i:04d}.{fmt}")
    return root


def zhang_sized_bins() -> np.ndarray:
    """313 grid bins (as many as Zhang et al.'s pts_in_hull.npy): the 261 sRGB bins and the 52
    grid points nearest the origin outside them."""
    from jaxcolor.colour import lab

    bins = lab.ab_bins()
    grid = np.stack(np.meshgrid(np.arange(-12, 13), np.arange(-12, 13), indexing="ij"),
                    -1).reshape(-1, 2) * 10.0
    outside = grid[~(grid[:, None] == bins[None]).all(-1).any(-1)]
    extra = outside[np.argsort(np.abs(outside).sum(-1), kind="stable")[:52]]
    return np.concatenate([bins, extra]).astype(np.float32)


def make_task(name: str, train_images, test_images, palette=None):
    """The TaskData of task ``name`` on uint8 images (with ``palette`` as its colours)."""
    from jaxcolor import tasks

    task = tasks.build_task(name, palette=lambda: np.asarray(palette, np.float32))
    return tasks.make_task_data(task, train_images, test_images)


def fit_task(model, data, **kwargs):
    """``training.fit`` of ``model`` on a TaskData with its task's plain objective; ``kwargs``
    are the :class:`TrainOptions` and fit's keywords."""
    import dataclasses

    from jaxcolor.training import TrainOptions, fit

    names = {field.name for field in dataclasses.fields(TrainOptions)}
    options = TrainOptions(**{key: value for key, value in kwargs.items() if key in names})
    return fit(model, data.task.objective, (data.train_inputs, data.train_targets),
               (data.test_inputs, data.test_targets), options,
               **{key: value for key, value in kwargs.items() if key not in names})


def tiny_colour_task(seed: int):
    """Colourization over 6 k-means colours of 32 train / 16 test synthetic images."""
    from jaxcolor import data
    from jaxcolor.colour.palette import colour_palette

    images = data.synthetic_images(48, seed=seed)
    return make_task("colourization", images[:32], images[32:],
                     colour_palette(images, 6, seed=0))


def model_for(name: str, num_filters: int, task_data):
    """A model of ``name`` (3×3 kernels) with the task's output width."""
    from jaxcolor.models import ModelSpec, build_model

    return build_model(ModelSpec(name, num_filters=num_filters, kernel=3,
                                 num_outputs=task_data.task.num_outputs))
