"""The ``tfds`` source: CIFAR-10 through jaxcolor's tfds builder (:mod:`jaxcolor.data.cifar10`),
one category's images cached after the first load.

A first run downloads and prepares the dataset (:func:`jaxcolor.tfds_prepare.prepared`: progress,
checked files, one line for any failure); every later run reads the category's images from a
``.npy`` file in ``~/.cache/jaxcolor/images`` (keyed by the dataset's version, the split and the
category), memory-mapped, so that each process of a multi-process run reads only its share.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxcolor import tfds_prepare
from jaxcolor.cache import cache_dir


def load(category: str, label: int | None, split: str, data_dir: str | None, max_images: int,
         process_share: Callable[[int], slice]) -> np.ndarray:
    """This process's share of the first ``max_images`` (0: all) uint8 images of ``split``
    whose label is ``label`` (None: every label), in CIFAR-10's order."""
    from jaxcolor.data.cifar10 import JaxcolorCifar10  # imports tfds

    dataset = f"{JaxcolorCifar10.name}-{JaxcolorCifar10.VERSION}"
    path = cache_dir("images") / f"{dataset}-{split}-{category}.npy"
    images = _read_cache(path)
    if images is None:
        images = _decode(label, split, data_dir)
        _write_cache(path, images)
    images = images[:max_images or len(images)]
    return np.array(images[process_share(len(images))])


def _read_cache(path: Path) -> np.ndarray | None:
    """The cached array, memory-mapped; None when missing or unreadable (then rebuilt)."""
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None


def _write_cache(path: Path, images: np.ndarray) -> None:
    """Atomically, so that concurrent runs never read half a file; an unwritable cache only
    costs decoding again next time."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp, images)
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def _decode(label: int | None, split: str, data_dir: str | None) -> np.ndarray:
    from jaxcolor.data.cifar10 import ARCHIVE_HOST, JaxcolorCifar10

    builder = tfds_prepare.prepared(
        JaxcolorCifar10, data_dir, title="CIFAR-10", host=ARCHIVE_HOST,
        offline_hint="use a local image folder: --image_dir=PATH (PATH/train/horse/*.jpg)")
    images = [example["image"] for example in tfds_prepare.examples(builder, split)
              if label is None or example["label"] == label]
    return np.stack(images) if images else np.zeros((0, 32, 32, 3), np.uint8)
