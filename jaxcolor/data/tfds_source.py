"""The ``tfds`` source: CIFAR-10 through jaxcolor's tfds builder (:mod:`jaxcolor.data.cifar10`),
one category's images cached after the first load.

A first run downloads and prepares the dataset (tfds shows progress); every later run reads the
category's images from a ``.npy`` file in ``~/.cache/jaxcolor/images`` (keyed by the dataset's
version, the split and the category), mapped so that each process of a multi-process run reads
only its share. A failed or interrupted download or preparation ends in one line and leaves
nothing that breaks the next run: tfds renames a download or a prepared dataset into place only
when it is complete, and the partial download is removed here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from jaxcolor.cache import cache_dir
from jaxcolor.errors import UserError

CHUNK = 1024  # records per batched read


def load(category: str, label: int | None, split: str, data_dir: str | None, max_images: int,
         process_share: Callable[[int], slice]) -> np.ndarray:
    """This process's share of the first ``max_images`` (0: all) uint8 images of ``split``
    whose label is ``label`` (None: every label), in CIFAR-10's order."""
    from jaxcolor.data.cifar10 import JaxcolorCifar10  # imports tfds

    dataset = f"{JaxcolorCifar10.name}-{JaxcolorCifar10.VERSION}"
    path = cache_dir("images") / f"{dataset}-{split}-{category}.npy"
    images = _read_cache(path)
    if images is None:
        _write_cache(path, _decode(JaxcolorCifar10, label, split, data_dir))
        images = _read_cache(path)
    images = images[:max_images or len(images)]
    return np.array(images[process_share(len(images))])


def _read_cache(path: Path) -> np.ndarray | None:
    """The cached array, memory-mapped; None when missing or unreadable (then rebuilt)."""
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None


def _write_cache(path: Path, images: np.ndarray) -> None:
    """Atomically, so that concurrent runs never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    try:
        np.save(tmp, images)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _decode(builder_class: type, label: int | None, split: str,
            data_dir: str | None) -> np.ndarray:
    import tensorflow_datasets as tfds

    builder = builder_class(data_dir=data_dir, file_format="array_record")
    if not builder.is_prepared():
        with _lock(cache_dir("images") / "prepare.lock"):
            builder = builder_class(data_dir=data_dir, file_format="array_record")
            if not builder.is_prepared():  # another process may have prepared it meanwhile
                _prepare(builder)
    source = tfds.data_source(builder.name, split=split, data_dir=data_dir,
                              builder_kwargs={"file_format": "array_record"})
    images = []
    for start in range(0, len(source), CHUNK):
        for example in source.__getitems__(range(start, min(start + CHUNK, len(source)))):
            if label is None or int(example["label"]) == label:
                images.append(example["image"])
    return np.stack(images) if images else np.zeros((0, 32, 32, 3), np.uint8)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """One process of this machine at a time prepares (others wait, then find it prepared)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _prepare(builder: object) -> None:
    """Download and prepare, or one UserError that says what happened and what to do."""
    import requests
    import tensorflow_datasets as tfds

    from jaxcolor.data import cifar10

    require_download_reachable()
    try:
        builder.download_and_prepare()
    except tfds.download.download_manager.NonMatchingChecksumError as err:
        raise UserError(
            f"the downloaded {cifar10.ARCHIVE_NAME} is not CIFAR-10's archive (its size or "
            f"SHA-256 differs from the registered ones: a damaged transfer, or a proxy's page?); "
            f"it was removed: run the same command again to download it anew.") from err
    except (requests.RequestException, ConnectionError, tfds.download.DownloadError) as err:
        raise UserError(
            f"downloading CIFAR-10 from {cifar10.ARCHIVE_URL} failed ({type(err).__name__}: "
            f"{err}); the partial download was removed: run the same command again.") from err
    except OSError as err:
        raise UserError(f"preparing CIFAR-10 in {builder.data_dir} failed: {err}. Nothing "
                        f"partial was kept; free the space or fix the folder and run "
                        f"again.") from err
    finally:
        _remove_partial_downloads(builder)


def _remove_partial_downloads(builder: object) -> None:
    """tfds downloads into ``<name>.tmp.<uuid>`` folders and renames the file out of them when
    it is complete and checked; any such folder left after a download ended is partial."""
    downloads = Path(os.fspath(builder.data_dir)).parents[1] / "downloads"
    for folder in downloads.glob("**/*.tmp.*"):
        shutil.rmtree(folder, ignore_errors=True)


# Host that the archive is downloaded from; probed so that offline users fail in seconds, not
# after tfds's minutes of retries.
DOWNLOAD_HOST = ("www.cs.toronto.edu", 443)


def require_download_reachable(address: tuple[str, int] = DOWNLOAD_HOST,
                               timeout: float = 5.0) -> None:
    """Fail fast when the CIFAR-10 download host cannot be reached."""
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as err:
        raise UserError(
            f"tfds cannot download CIFAR-10 (cannot reach {address[0]}: {err}). Connect to the "
            f"internet, set TFDS_DATA_DIR to a folder where it was prepared before, or use a "
            f"local image folder: --image_dir=PATH (PATH/train/horse/*.jpg).") from err
