"""CIFAR-10 as a tfds dataset that prepares without TensorFlow.

tfds's own ``cifar10`` needs TensorFlow to prepare (it extracts the archive and reads the batches
through ``tf.io.gfile`` and PNG-encodes every image), and reading it back decodes 50,000 PNGs.
This builder reads the same checksummed archive as a stream with :mod:`tarfile` and stores each
image as a raw uint8 tensor, so preparation runs with or without TensorFlow installed and
``tfds.data_source`` reads it back without decoding. Records keep CIFAR-10's own order.

Everything else is tfds's: its download manager (progress, size and SHA-256 checks, a temporary
folder renamed only when complete), its ArrayRecord writer and its reader.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds

from jaxcolor.data import CIFAR10_CLASSES

ARCHIVE_HOST = "www.cs.toronto.edu"
ARCHIVE_URL = f"https://{ARCHIVE_HOST}/~kriz/cifar-10-binary.tar.gz"
ARCHIVE_NAME = "cifar-10-binary.tar.gz"
# tfds's registered size and SHA-256 of the archive (its url_checksums/cifar10.txt).
ARCHIVE_SIZE = 170_052_171
ARCHIVE_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
BATCHES = {
    "train": tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("cifar-10-batches-bin/test_batch.bin",),
}
SIDE = 32
RECORD_BYTES = 1 + 3 * SIDE * SIDE  # a label byte, then the R, G and B planes


class JaxcolorCifar10(tfds.core.GeneratorBasedBuilder):
    """CIFAR-10's 50,000 train and 10,000 test images as uint8 (32, 32, 3) with their labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Raw uint8 images in CIFAR-10's order, prepared without TensorFlow."}
    url_infos = {ARCHIVE_URL: tfds.download.checksums.UrlInfo(
        size=ARCHIVE_SIZE, checksum=ARCHIVE_SHA256, filename=ARCHIVE_NAME)}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(SIDE, SIDE, 3), dtype=np.uint8),
                "label": tfds.features.ClassLabel(names=CIFAR10_CLASSES),
            }),
            supervised_keys=("image", "label"),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            disable_shuffling=True,  # CIFAR-10's order, as the image-folder source reads it
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        archive = dl_manager.download(ARCHIVE_URL)
        return {split: self._generate_examples(archive, split) for split in BATCHES}

    def _generate_examples(self, archive: object, split: str) -> Iterator[tuple[int, dict]]:
        index = 0
        for records in read_batches(archive, BATCHES[split]):
            for record in records:
                yield index, {"image": record[1:].reshape(3, SIDE, SIDE).transpose(1, 2, 0),
                              "label": int(record[0])}
                index += 1


def read_batches(archive: object, names: tuple[str, ...]) -> Iterator[np.ndarray]:
    """The records (N, 3073) of each named batch file in a CIFAR-10 binary archive, in the
    order of ``names``, read in one pass over the compressed stream."""
    found: dict[str, np.ndarray] = {}
    with open(archive, "rb") as file, tarfile.open(fileobj=file, mode="r|gz") as tar:
        for member in tar:
            if member.name in names:
                raw = tar.extractfile(member).read()
                found[member.name] = np.frombuffer(raw, np.uint8).reshape(-1, RECORD_BYTES)
    missing = [name for name in names if name not in found]
    if missing:
        raise ValueError(f"{archive} lacks {', '.join(missing)}")
    for name in names:
        yield found[name]
