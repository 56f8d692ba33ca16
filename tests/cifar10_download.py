"""CIFAR-10's download, offline: an archive in CIFAR-10's binary layout built from given images,
served where tfds's downloader would have fetched the real one.

Only the network is replaced: ``tfds``'s ``_open_url`` (the HTTP GET) yields the archive's bytes,
the reachability probe succeeds, and the archive's size and SHA-256 stand in for the real
archive's registered ones. Everything between (tfds's download manager and its checks, the
builder, the ArrayRecord writer and reader, jaxcolor's cache) runs as for a user.

In a subprocess, set ``CIFAR10_ARCHIVE=path`` and run a script through :func:`main`::

    PYTHONPATH=tests CIFAR10_ARCHIVE=a.tar.gz python -m cifar10_download experiments/q3_unet.py …

or, in a Jupyter kernel, :func:`serve_from_environment` from an IPython startup file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import runpy
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

Batches = dict[str, tuple[np.ndarray, np.ndarray]]  # file name → (labels (N,), images (N,32,32,3))
BATCH_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)
CLASS_NAMES = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
ARCHIVE_ENV = "CIFAR10_ARCHIVE"


def folder_batches(image_dir: str, per_class: int = 0) -> Batches:
    """CIFAR-10's five training batches and its test batch from an image folder of its classes
    (the first ``per_class`` images of each, 0: all), the classes interleaved as in CIFAR-10."""
    from jaxcolor import data

    classes = len(data.CIFAR10_CLASSES)
    batches = {}
    for split, names in (("train", BATCH_FILES[:5]), ("test", BATCH_FILES[5:])):
        images = data.load_category("folder", data.ALL_CATEGORIES, split, image_dir=image_dir,
                                    max_images=per_class * classes)
        labels = np.tile(np.arange(classes, dtype=np.uint8), len(images) // classes)
        for name, rows in zip(names, np.array_split(np.arange(len(images)), len(names)),
                              strict=True):
            batches[name] = labels[rows], images[rows]
    return batches


def random_batches(per_batch: int, seed: int = 0) -> Batches:
    rng = np.random.default_rng(seed)
    return {name: (rng.integers(0, 10, per_batch, dtype=np.uint8),
                   rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8))
            for name in BATCH_FILES}


def write_archive(path: Path, batches: Batches) -> Path:
    """``cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin`` (a label byte, then the R, G
    and B planes of each image) and ``batches.meta.txt``, gzipped tar as CIFAR-10 ships it."""
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, payload: bytes) -> None:
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

        for name, (labels, images) in batches.items():
            planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
            add(name, np.concatenate([labels[:, None], planes], axis=1).tobytes())
        add("batches.meta.txt", CLASS_NAMES)
    return path


@contextlib.contextmanager
def serve(archive: Path, fail_after_bytes: int | None = None,
          registered_sha256: str | None = None) -> Iterator[list[str]]:
    """tfds's downloader fetches ``archive`` in place of CIFAR-10's URL (the connection dropping
    after ``fail_after_bytes``, if given), checked against its own size and SHA-256 (or
    ``registered_sha256``); yields the URLs requested."""
    import requests
    from tensorflow_datasets.core.download import checksums, downloader

    from jaxcolor.data import cifar10, tfds_source

    blob = archive.read_bytes()
    requested: list[str] = []

    class Response:
        url = cifar10.ARCHIVE_URL
        headers = {"Content-length": str(len(blob))}

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(blob), 1 << 16):
            if fail_after_bytes is not None and start >= fail_after_bytes:
                raise requests.ConnectionError("Connection broken: connection reset by peer")
            yield blob[start:start + (1 << 16)]

    @contextlib.contextmanager
    def open_url(url: str, **kwargs: object) -> Iterator[tuple[Response, Iterator[bytes]]]:
        requested.append(url)
        yield Response(), chunks()

    registered = {cifar10.ARCHIVE_URL: checksums.UrlInfo(
        size=len(blob), checksum=registered_sha256 or hashlib.sha256(blob).hexdigest(),
        filename=cifar10.ARCHIVE_NAME)}
    saved = (downloader._open_url, cifar10.JaxcolorCifar10.url_infos,
             tfds_source.require_download_reachable)
    downloader._open_url = open_url
    cifar10.JaxcolorCifar10.url_infos = registered
    tfds_source.require_download_reachable = lambda *args, **kwargs: None
    try:
        yield requested
    finally:
        (downloader._open_url, cifar10.JaxcolorCifar10.url_infos,
         tfds_source.require_download_reachable) = saved


def serve_from_environment() -> None:
    """:func:`serve` ``$CIFAR10_ARCHIVE`` for the rest of this process."""
    serve(Path(os.environ[ARCHIVE_ENV])).__enter__()


def main() -> None:
    """Run the script ``sys.argv[1]`` (with the rest as its arguments) with the download of
    ``$CIFAR10_ARCHIVE`` served by :func:`serve`."""
    script, sys.argv = sys.argv[1], sys.argv[1:]
    sys.path[0] = str(Path(script).resolve().parent)  # as `python script` sets it
    with serve(Path(os.environ[ARCHIVE_ENV])):
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
