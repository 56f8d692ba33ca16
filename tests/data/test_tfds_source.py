"""The tfds source on tfds's real download and preparation path, only the network replaced
(``tests/tfds_download.py``): from an empty data folder to a category's pixels and labels,
with TensorFlow importable and not; the category cache; failed downloads and offline use."""

import contextlib
import importlib.machinery
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tfds_download import random_batches, serve_cifar10, write_archive

from jaxcolor import data
from jaxcolor.cache import cache_dir
from jaxcolor.data import cifar10
from jaxcolor.errors import UserError

TESTS = Path(__file__).resolve().parents[1]
HORSE = data.category_index("horse")

# Run in a fresh interpreter, so that TensorFlow is importable or not from the start.
PREPARE_AND_LOAD = """
import json, sys
if sys.argv[1] == "absent":
    import without_tensorflow
import importlib.util
from pathlib import Path
import numpy as np
from tfds_download import serve_cifar10
from jaxcolor import data
archive, data_dir, out = sys.argv[2:]
with serve_cifar10(Path(archive)) as requested:
    horses = data.load_category("tfds", "horse", "train", tfds_data_dir=data_dir)
    test = data.load_category("tfds", "all", "test", tfds_data_dir=data_dir)
np.savez(out, horses=horses, test=test)
print(json.dumps({"requested": requested,
                  "tensorflow": importlib.util.find_spec("tensorflow") is not None}))
"""


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test's archive differs (a real one is fixed by its checksum): caches are kept apart."""
    monkeypatch.setenv("JAXCOLOR_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def batches():
    return random_batches(per_batch=30, seed=0)


@pytest.fixture
def archive(tmp_path, batches):
    return write_archive(tmp_path / "cifar-10-binary.tar.gz", batches)


def train_images(batches, label=None):
    labels = np.concatenate([batches[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    images = np.concatenate([batches[f"data_batch_{i}.bin"][1] for i in range(1, 6)])
    return images if label is None else images[labels == label]


def tensorflow_installed() -> bool:
    return importlib.machinery.PathFinder.find_spec("tensorflow") is not None


@pytest.mark.slow  # a new Python process each, one of them importing TensorFlow
@pytest.mark.parametrize("tensorflow", ["absent", "importable"])
def test_first_run_prepares_cifar10_from_the_download(tmp_path, archive, batches, tensorflow):
    if tensorflow == "importable" and not tensorflow_installed():
        pytest.skip("TensorFlow is not installed (pip install tensorflow-cpu; .ci/run does)")
    data_dir, out = tmp_path / "tfds", tmp_path / "loaded.npz"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    child = subprocess.run(
        [sys.executable, "-c", PREPARE_AND_LOAD, tensorflow, str(archive), str(data_dir),
         str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report == {"requested": [cifar10.ARCHIVE_URL],
                      "tensorflow": tensorflow == "importable"}
    loaded = np.load(out)
    np.testing.assert_array_equal(loaded["horses"], train_images(batches, HORSE))
    np.testing.assert_array_equal(loaded["test"], batches["test_batch.bin"][1])
    assert "Dl Completed" in child.stderr and "Generating splits" in child.stderr  # progress
    assert not list((data_dir / "downloads").glob("**/*.tmp.*"))


def test_a_category_is_read_from_its_cache_after_the_first_load(tmp_path, archive, batches):
    data_dir = tmp_path / "tfds"
    with serve_cifar10(archive) as requested:
        first = data.load_category("tfds", "horse", "train", tfds_data_dir=str(data_dir))
    assert len(requested) == 1
    (data_dir / "jaxcolor_cifar10").rename(tmp_path / "moved")  # only the cache is left
    again = data.load_category("tfds", "horse", "train", tfds_data_dir=str(data_dir))
    np.testing.assert_array_equal(again, first)
    halves = [data.load_category("tfds", "horse", "train", tfds_data_dir=str(data_dir),
                                 max_images=10, process_share=lambda n, i=i: slice(i * n // 2,
                                                                                  (i + 1) * n // 2))
              for i in range(2)]
    np.testing.assert_array_equal(np.concatenate(halves), first[:10])


def test_a_damaged_cache_file_is_rebuilt(tmp_path, archive):
    data_dir = str(tmp_path / "tfds")
    with serve_cifar10(archive):
        first = data.load_category("tfds", "horse", "test", tfds_data_dir=data_dir)
        (cached,) = cache_dir("images").glob("*-test-horse.npy")
        cached.write_bytes(cached.read_bytes()[:100])
        np.testing.assert_array_equal(
            data.load_category("tfds", "horse", "test", tfds_data_dir=data_dir), first)


def test_a_download_that_fails_half_way_is_one_error_and_the_next_run_succeeds(
        tmp_path, archive, batches):
    data_dir = tmp_path / "tfds"
    with serve_cifar10(archive, fail_after_bytes=archive.stat().st_size // 2), \
            pytest.raises(UserError, match="downloading CIFAR-10 failed .*connection "
                                           "reset.*run the same command again"):
        data.load_category("tfds", "horse", "train", tfds_data_dir=str(data_dir))
    assert not list(data_dir.glob("downloads/**/*.tmp.*"))  # the partial download is gone
    assert not list(data_dir.glob("jaxcolor_cifar10/*"))
    with serve_cifar10(archive):
        images = data.load_category("tfds", "horse", "train", tfds_data_dir=str(data_dir))
    np.testing.assert_array_equal(images, train_images(batches, HORSE))


def test_ctrl_c_during_the_download_leaves_nothing_that_breaks_the_next_run(tmp_path, archive,
                                                                          batches):
    """A real SIGINT while tfds's downloader thread fetches (slowly): the main thread stops at
    once, the partial file is removed, and the next run downloads and prepares anew."""
    from tensorflow_datasets.core.download import downloader

    data_dir = tmp_path / "tfds"
    with serve_cifar10(archive):
        served = downloader._open_url

        @contextlib.contextmanager
        def slow_and_interrupted(url, **kwargs):
            with served(url, **kwargs) as (response, chunks):
                def trickle():
                    for index, chunk in enumerate(chunks):
                        if index == 1:  # the download has begun: the user presses Ctrl-C
                            # (to the main thread, as a terminal's usually lands: sent to the
                            # process from here, Linux may hand it to this thread instead)
                            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                        time.sleep(0.05)
                        yield chunk
                yield response, trickle()

        downloader._open_url = slow_and_interrupted
        start = time.perf_counter()
        # Python's own handler, as in a terminal (the worker's may have been replaced)
        inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with pytest.raises(KeyboardInterrupt):
                data.load_category("tfds", "horse", "train", tfds_data_dir=str(data_dir))
        except pytest.fail.Exception:
            pytest.fail(f"no KeyboardInterrupt (the SIGINT handler before: {inherited!r})")
        finally:
            signal.signal(signal.SIGINT, inherited)
        assert time.perf_counter() - start < 5
    assert not [p for p in data_dir.glob("downloads/**/*") if p.is_file()]
    with serve_cifar10(archive):
        images = data.load_category("tfds", "horse", "train", tfds_data_dir=str(data_dir))
    np.testing.assert_array_equal(images, train_images(batches, HORSE))


def test_a_download_with_the_wrong_checksum_is_refused_and_removed(tmp_path, archive):
    data_dir = tmp_path / "tfds"
    with serve_cifar10(archive, registered_sha256="0" * 64), \
            pytest.raises(UserError, match="file of CIFAR-10 does not match its "
                                      "registered size and SHA-256.*download it anew"):
        data.load_category("tfds", "horse", "train", tfds_data_dir=str(data_dir))
    assert not [p for p in data_dir.glob("downloads/**/*") if p.is_file()]


def test_offline_first_run_fails_fast_with_a_clear_message(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(UserError, match="tfds cannot download CIFAR-10.*--image_dir"):
        data.load_category("tfds", "horse", "train", tfds_data_dir=str(tmp_path))
