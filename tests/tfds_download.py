"""The downloads of jaxcolor's tfds datasets, offline: files in CIFAR-10's and MNIST's layouts
built from given images, served where tfds's downloader would have fetched the real ones.

Only the network is replaced: tfds's ``_open_url`` (the HTTP GET) yields the files' bytes, the
reachability probe succeeds, and the files' sizes and SHA-256s stand in for the real files'
registered ones. Everything between (tfds's download manager and its checks, the builders, the
ArrayRecord writer and reader, jaxcolor's cache) runs as for a user.

In a subprocess, set ``CIFAR10_ARCHIVE=path`` and run a script through :func:`main`::

    PYTHONPATH=tests CIFAR10_ARCHIVE=a.tar.gz python -m tfds_download experiments/q3_unet.py …

or, in a Jupyter kernel, :func:`serve_from_environment` from an IPython startup file.
"""

from __future__ import annotations

import contextlib
import gzip
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


def mnist_files(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, bytes]:
    """MNIST's four gzip files (IDX headers, then the bytes) of {split: (labels, images)}, by
    URL."""
    from jaxcolor.scratch import mnist

    files = {}
    for split, (labels, images) in splits.items():
        count = len(labels)
        for part, header, payload in (
                ("images", np.array([2051, count, 28, 28], ">u4"), images),
                ("labels", np.array([2049, count], ">u4"), labels)):
            name = mnist.FILES[split][part][0]
            files[mnist.URL + name] = gzip.compress(header.tobytes() + payload.tobytes())
    return files


@contextlib.contextmanager
def serve(builder_class: type, files: dict[str, bytes], fail_after_bytes: int | None = None,
          registered_sha256: str | None = None) -> Iterator[list[str]]:
    """tfds's downloader fetches ``files[url]`` for each URL (the connection dropping after
    ``fail_after_bytes`` of a file, if given), each checked against its own size and SHA-256
    (or ``registered_sha256``); yields the URLs requested."""
    import requests
    from tensorflow_datasets.core.download import checksums, downloader

    from jaxcolor import tfds_prepare

    requested: list[str] = []

    def chunks(blob: bytes) -> Iterator[bytes]:
        for start in range(0, len(blob), 1 << 16):
            if fail_after_bytes is not None and start >= fail_after_bytes:
                raise requests.ConnectionError("Connection broken: connection reset by peer")
            yield blob[start:start + (1 << 16)]

    @contextlib.contextmanager
    def open_url(url: str, **kwargs: object) -> Iterator[tuple[object, Iterator[bytes]]]:
        requested.append(url)
        response = type("Response", (), {"url": url,
                                          "headers": {"Content-length": str(len(files[url]))}})
        yield response, chunks(files[url])

    registered = {url: checksums.UrlInfo(
        size=len(blob), checksum=registered_sha256 or hashlib.sha256(blob).hexdigest(),
        filename=url.rsplit("/", 1)[1]) for url, blob in files.items()}
    saved = (downloader._open_url, builder_class.url_infos, tfds_prepare.require_reachable)
    downloader._open_url = open_url
    builder_class.url_infos = registered
    tfds_prepare.require_reachable = lambda *args, **kwargs: None
    try:
        yield requested
    finally:
        downloader._open_url, builder_class.url_infos, tfds_prepare.require_reachable = saved


def serve_cifar10(archive: Path, **kwargs: object) -> contextlib.AbstractContextManager:
    """:func:`serve` an archive of :func:`write_archive` as CIFAR-10's."""
    from jaxcolor.data import cifar10

    return serve(cifar10.JaxcolorCifar10, {cifar10.ARCHIVE_URL: archive.read_bytes()}, **kwargs)


_SERVING: list[contextlib.AbstractContextManager] = []


def serve_from_environment() -> None:
    """:func:`serve_cifar10` ``$CIFAR10_ARCHIVE`` for the rest of this process."""
    _SERVING.append(serve_cifar10(Path(os.environ[ARCHIVE_ENV])))  # kept: collected, it would end
    _SERVING[-1].__enter__()


def main() -> None:
    """Run the script ``sys.argv[1]`` (with the rest as its arguments) with the download of
    ``$CIFAR10_ARCHIVE`` served by :func:`serve_cifar10`."""
    script, sys.argv = sys.argv[1], sys.argv[1:]
    sys.path[0] = str(Path(script).resolve().parent)  # as `python script` sets it
    with serve_cifar10(Path(os.environ[ARCHIVE_ENV])):
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
