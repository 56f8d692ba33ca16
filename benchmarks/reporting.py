"""What a job's reporting phase costs, piece by piece: SSIM of a test set with dm-pix's own
Gaussian filter and with jaxcolor's (matrix products), every quality metric of a set
(``metrics.image_quality``, one compiled program), and q3's gradient norms of two fresh models
as q3 computed them before (each model's init and gradient compiled at XLA's default level) and
now (both models in one ``compiled_once`` program: no LLVM optimisation); a run's sample grid
(8 samples × 6 columns, as q3 draws it) with one axes per column (now) and one per image (code
of 3f3287b). Times are first calls (compilation included, what a job pays once) and medians
of warm calls, on random 32×32 images and labels.

    python benchmarks/reporting.py [--images=1000] [--batch=50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import dm_pix as pix
import jax
import numpy as np
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))

from answers.q3 import block_gradient_norms  # noqa: E402
from jaxcolor.colour import metrics  # noqa: E402
from jaxcolor.models import ModelSpec, build_model  # noqa: E402
from jaxcolor.objectives import CLASSIFICATION  # noqa: E402
from jaxcolor.runner import plots  # noqa: E402
from jaxcolor.timing import time_call  # noqa: E402
from jaxcolor.training import steps  # noqa: E402


def first_call_seconds(fn, *args) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    truth = rng.random((args.images, 32, 32, 3), np.float32)
    prediction = np.clip(truth + rng.normal(0, 0.1, truth.shape), 0, 1).astype(np.float32)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.images} images")
    for label, fn in (("SSIM, dm-pix's filter", jax.jit(pix.ssim)),
                      ("SSIM, jaxcolor's filter", metrics.ssim),
                      ("image_quality (all metrics)", metrics._image_quality)):
        first = first_call_seconds(fn, prediction, truth)
        warm = time_call(fn, prediction, truth, repeats=5)
        print(f"{label}: first call {first:.2f} s, warm {warm:.3f} s", flush=True)
    inputs = rng.random((args.batch, 32, 32, 1), np.float32)
    targets = rng.integers(0, 24, (args.batch, 32, 32)).astype(np.int32)
    models = {name: build_model(ModelSpec(name, num_filters=32, kernel=3, num_outputs=24))
              for name in ("cnn", "unet")}
    for label, norms in (("each model's init and gradient compiled at the default level",
                          separately_at_default_level),
                         ("both models in one compiled_once program", block_gradient_norms)):
        start = time.perf_counter()
        norms(models, inputs, targets, CLASSIFICATION)
        print(f"q3 gradient norms, {label}: {time.perf_counter() - start:.2f} s "
              f"(compile and run)", flush=True)
    columns = [("input", inputs[:8])] + [(f"rendering {i}", truth[:8]) for i in range(5)]
    with tempfile.TemporaryDirectory() as scratch:
        for label, draw in (("one axes per column", plots.image_grid),
                            ("one axes per image", grid_of_axes)):
            times = []
            for _ in range(3):
                start = time.perf_counter()
                draw(columns, Path(scratch) / "grid.png", title="q3")
                times.append(time.perf_counter() - start)
            print(f"sample grid, {label}: {np.median(times):.2f} s (median of 3)", flush=True)


def separately_at_default_level(models, inputs, targets, objective, seed=0):
    """q3's gradient norms as computed before compiled_once (code of 5d2e44e)."""
    result = {}
    for name, model in models.items():
        variables = jax.jit(model.init, static_argnames="train")(
            jax.random.key(seed), inputs[:1], train=False)

        def loss_of(params, model=model, variables=variables):
            outputs, _ = model.apply({**variables, "params": params}, inputs, train=True,
                                     mutable=["batch_stats"])
            return jax.numpy.mean(objective.loss(outputs, targets))

        grads = steps.compiled(jax.grad(loss_of))(variables["params"])
        result[name] = {block: float(jax.numpy.linalg.norm(
            layer["Conv_0"]["kernel"] if "Conv_0" in layer else layer["kernel"]))
            for block, layer in grads.items()}
    return result


def grid_of_axes(columns, path, title=""):
    """plots.image_grid as drawn before, one axes per image (code of 3f3287b)."""
    rows = len(columns[0][1])
    fig = Figure(figsize=(1.6 * len(columns), 1.6 * rows))
    axes = fig.subplots(rows, len(columns), squeeze=False)
    for col, (name, images) in enumerate(columns):
        for row in range(rows):
            image = np.clip(images[row], 0.0, 1.0)
            if image.shape[-1] == 1:
                axes[row, col].imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                axes[row, col].imshow(image)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    plots._save(fig, path)


if __name__ == "__main__":
    main()
