"""The small real data sets the foundations are taught on, as float arrays: scikit-learn's
shipped ones (offline) and MNIST through tfds."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxcolor import tfds_prepare


@dataclasses.dataclass(frozen=True)
class Digits:
    """Flattened grey images in [0, 1] (rows) and their digit labels, split into train/test."""

    name: str
    side: int  # images are side × side
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def digits(test_count: int = 497, seed: int = 0) -> Digits:
    """scikit-learn's 1,797 8×8 digits (values 0–16 scaled to [0, 1]), shuffled with ``seed``;
    the last ``test_count`` are the test set."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(seed).permutation(len(data.target))
    x = (data.data[order] / 16.0).astype(np.float32)
    y = data.target[order].astype(np.int32)
    return Digits("digits", 8, x[:-test_count], y[:-test_count], x[-test_count:], y[-test_count:])


def mnist(data_dir: str | None = None) -> Digits:
    """MNIST's 60,000 training and 10,000 test 28×28 digits through tfds (downloaded and
    prepared on first use, with or without TensorFlow: :mod:`jaxcolor.scratch.mnist`)."""
    from jaxcolor.scratch.mnist import HOST, JaxcolorMnist

    builder = tfds_prepare.prepared(JaxcolorMnist, data_dir, title="MNIST", host=HOST,
                                    offline_hint="use --dataset=digits (offline)")
    arrays = {}
    for split in ("train", "test"):
        examples = list(tfds_prepare.examples(builder, split))
        arrays[split] = (np.stack([e["image"].reshape(-1) for e in examples]
                                  ).astype(np.float32) / 255.0,
                         np.array([e["label"] for e in examples], np.int32))
    return Digits("mnist", 28, *arrays["train"], *arrays["test"])


DATASETS = {"digits": digits, "mnist": mnist}


def regression_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(features, target) of scikit-learn's shipped ``"diabetes"`` (442 patients, 10 features,
    disease progression) or ``"breast_cancer"`` (569 tumours, 30 features, 1 = benign)."""
    from sklearn import datasets

    loader = {"diabetes": datasets.load_diabetes,
              "breast_cancer": datasets.load_breast_cancer}[name]
    data = loader()
    return data.data.astype(np.float64), data.target.astype(np.float64)
