"""MNIST as a tfds dataset that prepares without TensorFlow (tfds's own ``mnist`` needs it to
extract the files, read them and PNG-encode every digit): the four checksummed gzip files read
with :mod:`gzip`, each digit stored as a raw uint8 tensor, in MNIST's order."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds

HOST = "storage.googleapis.com"
URL = f"https://{HOST}/cvdf-datasets/mnist/"
SIDE = 28
# File, header bytes, size and SHA-256 (tfds's url_checksums/mnist.txt), by split and part.
FILES = {
    "train": {
        "images": ("train-images-idx3-ubyte.gz", 16, 9_912_422,
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "labels": ("train-labels-idx1-ubyte.gz", 8, 28_881,
                   "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    },
    "test": {
        "images": ("t10k-images-idx3-ubyte.gz", 16, 1_648_877,
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "labels": ("t10k-labels-idx1-ubyte.gz", 8, 4_542,
                   "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
}


class JaxcolorMnist(tfds.core.GeneratorBasedBuilder):
    """MNIST's 60,000 train and 10,000 test digits as uint8 (28, 28) with their labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Raw uint8 digits in MNIST's order, prepared without TensorFlow."}
    url_infos = {URL + name: tfds.download.checksums.UrlInfo(size=size, checksum=sha256,
                                                             filename=name)
                 for parts in FILES.values() for name, _, size, sha256 in parts.values()}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(SIDE, SIDE), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=("image", "label"),
            homepage="http://yann.lecun.com/exdb/mnist/",
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        paths = dl_manager.download({f"{split}_{part}": URL + name
                                     for split, parts in FILES.items()
                                     for part, (name, *_) in parts.items()})
        return {split: self._generate_examples(paths[f"{split}_images"],
                                               paths[f"{split}_labels"], split)
                for split in FILES}

    def _generate_examples(self, images_path: object, labels_path: object,
                           split: str) -> Iterator[tuple[int, dict]]:
        images = _read(images_path, FILES[split]["images"][1]).reshape(-1, SIDE, SIDE)
        labels = _read(labels_path, FILES[split]["labels"][1])
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            yield index, {"image": image, "label": int(label)}


def _read(path: object, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as file:
        return np.frombuffer(file.read()[header:], np.uint8)
