"""Image sources → uint8 arrays (N, H, W, 3) for one category and split.

Three sources, one result type:
- ``tfds``: CIFAR-10 through TensorFlow Datasets (:mod:`jaxcolor.data.tfds_source`): downloaded
  and prepared on first use, with or without TensorFlow; each category cached after its first load.
- ``folder``: ``ROOT/{train,test}/{class}/*.{png,jpg,jpeg}``, files in sorted-name order.
- ``synthetic``: small procedurally generated images for tests and smoke runs.
"""

from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from jaxcolor.data import tfds_source
from jaxcolor.errors import UserError

T = TypeVar("T")
R = TypeVar("R")

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
ALL_CATEGORIES = "all"  # --category=all: every class together
SPLITS = ("train", "test")
SOURCES = ("tfds", "folder", "synthetic")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_DIR_ENV = "JAXCOLOR_IMAGE_DIR"
SYNTHETIC_SIZES = {"train": 256, "test": 64}


def resolve_source(source: str, image_dir: str | None) -> tuple[str, str | None]:
    """Pick the source: explicit ``source`` wins; else a folder if one is given (flag or env)."""
    image_dir = image_dir or os.environ.get(IMAGE_DIR_ENV) or None
    if not source:
        source = "folder" if image_dir else "tfds"
    if source not in SOURCES:
        raise UserError(f"--source={source!r} is unknown; use one of {', '.join(SOURCES)}.")
    if source == "folder" and not image_dir:
        raise UserError(f"--source=folder needs --image_dir=PATH (or ${IMAGE_DIR_ENV}).")
    return source, image_dir


def load_category(
    source: str,
    category: str,
    split: str,
    *,
    image_dir: str | None = None,
    tfds_data_dir: str | None = None,
    max_images: int = 0,
    process_share: Callable[[int], slice] = slice,
) -> np.ndarray:
    """Return the uint8 images (N, H, W, 3) of one category and split from a source.

    ``max_images`` > 0 keeps only the first that many (in source order) for quick runs.
    ``process_share(count)`` picks this process's rows in multi-process runs; a folder source
    then decodes only those files.
    """
    if split not in SPLITS:
        raise UserError(f"split {split!r} is unknown; use one of {', '.join(SPLITS)}.")
    if source == "tfds":
        label = None if category == ALL_CATEGORIES else category_index(category)
        images = tfds_source.load(category, label, split, tfds_data_dir, max_images,
                                  process_share)
    elif source == "folder":
        images = _load_folder(Path(image_dir or ""), category, split, max_images,
                              process_share)
    elif source == "synthetic":
        images = synthetic_images(SYNTHETIC_SIZES[split], seed=SPLITS.index(split))
        images = images[:max_images or len(images)]
        images = images[process_share(len(images))]
    else:
        raise UserError(f"--source={source!r} is unknown; use one of {', '.join(SOURCES)}.")
    if len(images) == 0:
        raise UserError(f"no {split} images for category {category!r} in the {source} source.")
    return images


def category_index(category: str, names: Sequence[str] = CIFAR10_CLASSES) -> int:
    if category not in names:
        raise UserError(f"--category={category!r} is unknown; use one of: {', '.join(names)}.")
    return list(names).index(category)


# --- threads -------------------------------------------------------------------------------------

def in_order(function: Callable[[T], R], items: Iterable[T],
             workers: int | None = None) -> Iterator[R]:
    """``function(item)`` of each item, computed on ``workers`` threads (default: one per core)
    and yielded in order; at most two per thread are in flight, so a consumer that stops early
    leaves little work behind."""
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: collections.deque[Future[R]] = collections.deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# --- image folder --------------------------------------------------------------------------------

def _load_folder(root: Path, category: str, split: str, max_images: int,
                 process_share: Callable[[int], slice]) -> np.ndarray:
    if not root.is_dir():
        raise UserError(f"--image_dir={root} does not exist or is not a folder.")
    split_dir = root / split
    if not split_dir.is_dir():
        raise UserError(f"--image_dir={root} has no '{split}' folder (expected {root}/{split}/"
                        f"{category}/*.jpg).")
    if category == ALL_CATEGORIES:
        category_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir())
        if not category_dirs:
            raise UserError(f"--category=all: {split_dir} holds no class folders.")
    else:
        category_dirs = [split_dir / category]
        if not category_dirs[0].is_dir():
            found = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
            raise UserError(f"--category={category!r}: no folder {category_dirs[0]}; categories "
                            f"found: {', '.join(found) or 'none'}.")
    per_class = [sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                 for folder in category_dirs]
    # Classes interleaved (one file of each in turn), so that --max_images keeps them balanced.
    files = [path for row in itertools.zip_longest(*per_class) for path in row if path]
    if not files:
        raise UserError(f"{split_dir / category} holds no .png/.jpg images.")
    if max_images:
        files = files[:max_images]
    files = files[process_share(len(files))]
    images = read_images(files)
    shape = images[0].shape
    for path, image in zip(files, images, strict=True):
        if image.shape != shape:
            raise UserError(f"{path} is {image.shape[1]}x{image.shape[0]} but {files[0]} is "
                            f"{shape[1]}x{shape[0]}; all images of a split must share one size.")
    return np.stack(images)


# Files smaller than this decode faster than a hand-off to a thread costs (CIFAR's ~1 KB JPEGs
# were slower on threads than in a loop: `python benchmarks/image_loading.py`); Pillow releases
# the GIL while it decodes larger files.
THREADED_FILE_BYTES = 16 << 10


def read_images(files: list[Path]) -> list[np.ndarray]:
    """:func:`read_image` of each file, in order: on one thread per core when the files are
    large enough to gain from it (their median size over the first few), else in a loop."""
    sizes = sorted(path.stat().st_size for path in files[:16])
    if sizes and sizes[len(sizes) // 2] >= THREADED_FILE_BYTES:
        return list(in_order(read_image, files))
    return [read_image(path) for path in files]


# The background that transparent pixels are composited on (RGB, 0-255).
ALPHA_BACKGROUND = (255, 255, 255)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def read_image(path: Path) -> np.ndarray:
    """uint8 RGB (H, W, 3) of an image file, or a UserError naming it. Grey, palette and CMYK
    images are converted; 16-bit images scaled to 8 bits (Pillow's own conversion clips them to
    white); float images, which must hold values in [0, 1], likewise; transparent pixels are
    composited on white (:data:`ALPHA_BACKGROUND`)."""
    try:
        with Image.open(path) as image:
            return _rgb8(image, path)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err}. Remove or replace the file.") from err


def _rgb8(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 1.0 if image.mode == "F" else 65535.0
        if values.min() < 0 or values.max() > scale:
            raise UserError(f"cannot read image {path}: its {image.mode}-mode values span "
                            f"{values.min():g}..{values.max():g}, outside 0..{scale:g}. "
                            "Save it as an 8-bit PNG or JPEG.")
        grey = np.round(values * (255.0 / scale)).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0
        composite = rgba[..., :3] * alpha + np.float32(ALPHA_BACKGROUND) * (1.0 - alpha)
        return np.round(composite).astype(np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


# A pixel is grey when its channels differ by at most this much (JPEG's chroma noise stays under).
GREY_CHANNEL_SPREAD = 12
# Training sets with fewer coloured pixels than this fraction have no colour to learn.
MIN_COLOURED_FRACTION = 0.01


def check_has_colour(images: np.ndarray, where: str) -> None:
    """A UserError naming ``where`` when (nearly) every pixel of ``images`` is grey: a model
    trained on them learns to output grey, and its accuracy means nothing."""
    sample = images[::max(1, len(images) // 2000)]  # a spread-out sample decides as well
    spread = sample.max(axis=-1).astype(np.int16) - sample.min(axis=-1)
    coloured = float(np.mean(spread > GREY_CHANNEL_SPREAD))
    if coloured < MIN_COLOURED_FRACTION:
        raise UserError(f"the training images in {where} have no colour to learn "
                        f"({coloured:.2%} of pixels are coloured; grey or black-and-white "
                        "images?). Colourization trains on colour images.")


# --- synthetic ------------------------------------------------------------------------------------

_PALETTE = np.array([
    [0.55, 0.35, 0.20],  # brown
    [0.30, 0.60, 0.25],  # green
    [0.35, 0.55, 0.85],  # sky blue
    [0.85, 0.80, 0.70],  # sand
    [0.15, 0.15, 0.15],  # near black
    [0.90, 0.30, 0.25],  # red
], dtype=np.float32)


def synthetic_images(count: int, seed: int = 0, size: int = 32) -> np.ndarray:
    """Deterministic toy scenes: a sky/ground split and an ellipse "animal", from a small palette.

    Colour correlates with position and brightness, so colourization is learnable in a few steps.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    images = np.empty((count, size, size, 3), np.float32)
    for i in range(count):
        sky, ground, animal = rng.choice(len(_PALETTE), size=3, replace=False)
        horizon = rng.uniform(0.3, 0.7)
        image = np.where((yy < horizon)[..., None], _PALETTE[sky], _PALETTE[ground])
        cy, cx = rng.uniform(0.3, 0.7, size=2)
        ry, rx = rng.uniform(0.1, 0.25, size=2)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1.0
        image = np.where(inside[..., None], _PALETTE[animal], image)
        image = image + rng.normal(0.0, 0.02, size=image.shape)
        images[i] = image
    return (np.clip(images, 0.0, 1.0) * 255.0).round().astype(np.uint8)
