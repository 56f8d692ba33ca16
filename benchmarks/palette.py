"""Cold k-means palette: seconds to fit the 24 colours of a category's training images (fresh
cache), and the k-means objective (mean squared RGB distance, [0, 1] scale, of every pixel to its
nearest palette colour).

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
from jaxcolor.colour.palette import colour_palette, nearest_colour, to_unit_float


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


if __name__ == "__main__":
    main()
