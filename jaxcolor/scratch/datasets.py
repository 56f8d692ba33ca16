"""The small real data sets the foundations are taught on, as float arrays: scikit-learn's
shipped ones (offline) and MNIST through tfds."""

from __future__ import annotations

import dataclasses
import socket

import numpy as np

from jaxcolor.errors import UserError


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


MNIST_HOST = ("storage.googleapis.com", 443)  # where tfds downloads MNIST from


def _offline(detail: str) -> UserError:
    return UserError(f"tfds cannot download MNIST ({detail}). Connect to the internet, set "
                     f"TFDS_DATA_DIR to a prepared copy, or use --dataset=digits (offline).")


def require_mnist_reachable(timeout: float = 5.0) -> None:
    """Fail fast when MNIST's download host cannot be reached (tfds retries for minutes)."""
    try:
        socket.create_connection(MNIST_HOST, timeout=timeout).close()
    except OSError as err:
        raise _offline(f"cannot reach {MNIST_HOST[0]}: {err}") from err


def mnist(data_dir: str | None = None) -> Digits:
    """MNIST's 60,000 training and 10,000 test 28×28 digits from tfds (downloaded once)."""
    import tensorflow_datasets as tfds

    if not tfds.builder("mnist", data_dir=data_dir, file_format="array_record").is_prepared():
        require_mnist_reachable()
    try:
        splits = {split: tfds.data_source("mnist", split=split, data_dir=data_dir,
                                          builder_kwargs={"file_format": "array_record"})
                  for split in ("train", "test")}
    except (ConnectionError, OSError) as err:
        raise _offline(f"{type(err).__name__}: {err}") from err
    arrays = {}
    for split, source in splits.items():
        examples = [source[i] for i in range(len(source))]
        arrays[split] = (np.stack([np.asarray(e["image"], np.float32).reshape(-1) / 255.0
                                   for e in examples]),
                         np.array([int(e["label"]) for e in examples], np.int32))
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
