"""Cold k-means palette: seconds to fit the 24 colours of a category's training images (fresh
cache), and the k-means objective (mean squared RGB distance, [0, 1] scale, of every pixel to its
nearest palette colour). Then the colour labels of those images (what a task's targets are):
``nearest_colour`` in chunks against one whole-array program (code of 3f3287b), first call and
warm median, and whether their labels agree.

    python benchmarks/palette.py --image_dir=../shared/data/cifar10-jpeg --categories=horse,all
"""

import argparse
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor import data
from jaxcolor.colour.palette import (
    _squared_distances,
    colour_palette,
    nearest_colour,
    to_unit_float,
)
from jaxcolor.timing import time_call


def objective(images: np.ndarray, palette: np.ndarray, chunk: int = 1 << 20) -> float:
    """Mean squared distance of every pixel to its nearest palette colour."""
    pixels, centres = images.reshape(-1, 3), jnp.asarray(palette)
    total = 0.0
    for start in range(0, len(pixels), chunk):
        part = to_unit_float(pixels[start:start + chunk])
        nearest = centres[nearest_colour(part, centres)]
        total += float(jnp.sum((part - nearest) ** 2))
    return total / len(pixels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_dir", required=True)
    parser.add_argument("--categories", default="horse,all")
    parser.add_argument("--colours", type=int, default=24)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    for category in args.categories.split(","):
        images = data.load_category("folder", category, "train", image_dir=args.image_dir)
        start = time.perf_counter()
        palette = colour_palette(images, args.colours, 0, cache_dir=Path(tempfile.mkdtemp()),
                                 log=print)
        seconds = time.perf_counter() - start
        print(f"{category}: {len(images)} images, palette in {seconds:.2f} s (cold), k-means "
              f"objective {objective(images, palette):.6f}", flush=True)
        labels = {}
        centres = jnp.asarray(palette)
        for name, label in (("in chunks", nearest_colour), ("whole array", whole_array_labels)):
            start = time.perf_counter()
            labels[name] = np.asarray(label(images, centres))
            first = time.perf_counter() - start
            warm = time_call(label, images, centres, repeats=5)
            print(f"{category}: labels {name}: first call {first:.2f} s, warm {warm:.2f} s",
                  flush=True)
        print(f"{category}: the same labels: {np.array_equal(*labels.values())}", flush=True)


@jax.jit
def _whole_array_labels(pixels: jax.Array, centres: jax.Array) -> jax.Array:
    flat = pixels.reshape(-1, pixels.shape[-1])
    labels = jnp.argmin(_squared_distances(flat, centres), axis=-1)
    return labels.astype(jnp.int32).reshape(pixels.shape[:-1])


def whole_array_labels(images: np.ndarray, centres: jax.Array) -> jax.Array:
    """The colour labels as computed before chunking (code of 3f3287b)."""
    return _whole_array_labels(to_unit_float(images), centres)


if __name__ == "__main__":
    main()
