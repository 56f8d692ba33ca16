import numpy as np
import pytest
from conftest import write_folder
from PIL import Image

from jaxcolor import data
from jaxcolor.errors import UserError


def test_folder_loader_reads_category_in_sorted_order(tmp_path):
    write_folder(tmp_path)
    images = data.load_category("folder", "horse", "train", image_dir=str(tmp_path))
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 0, 0, 0], [0, 10, 20, 30, 40])
    cats = data.load_category("folder", "cat", "test", image_dir=str(tmp_path), max_images=2)
    np.testing.assert_array_equal(cats[:, 0, 0, 0], [1, 11])


def test_folder_loader_reads_jpeg(tmp_path):
    write_folder(tmp_path, {"train": 2}, fmt="jpg")
    images = data.load_category("folder", "horse", "train", image_dir=str(tmp_path))
    assert images.shape == (2, 32, 32, 3)
    assert abs(int(images[1, 5, 5, 0]) - 10) <= 2  # lossy, but close


@pytest.mark.parametrize("case, pattern", [
    ("missing_root", "does not exist"),
    ("missing_category", "categories found: cat, horse"),
    ("empty", "holds no .png/.jpg images"),
    ("corrupt", "cannot read image .*0001.png"),
    ("mixed_sizes", "must share one size"),
])
def test_folder_loader_errors_name_the_problem(tmp_path, case, pattern):
    root = write_folder(tmp_path / "data")
    category = "horse"
    if case == "missing_root":
        root = tmp_path / "nope"
    elif case == "missing_category":
        category = "zebra"
    elif case == "empty":
        (root / "train" / "dog").mkdir()
        category = "dog"
    elif case == "corrupt":
        (root / "train" / "horse" / "0001.png").write_bytes(b"not a png")
    elif case == "mixed_sizes":
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "train/horse/0002.png")
    with pytest.raises(UserError, match=pattern):
        data.load_category("folder", category, "train", image_dir=str(root))


def test_resolve_source_prefers_folder_when_given(monkeypatch):
    assert data.resolve_source("", None) == ("tfds", None)
    assert data.resolve_source("", "/x") == ("folder", "/x")
    monkeypatch.setenv(data.IMAGE_DIR_ENV, "/from/env")
    assert data.resolve_source("", None) == ("folder", "/from/env")
    with pytest.raises(UserError, match="--source='bogus'"):
        data.resolve_source("bogus", None)


def test_unknown_category_is_a_user_error():
    with pytest.raises(UserError, match="--category='zebra' is unknown"):
        data.category_index("zebra")


def test_synthetic_source_is_deterministic():
    a = data.load_category("synthetic", "horse", "train")
    b = data.load_category("synthetic", "horse", "train")
    assert a.shape == (data.SYNTHETIC_SIZES["train"], 32, 32, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:10], data.load_category("synthetic", "horse", "test")[:10])


def test_real_cifar_folder_integration(real_data):
    images = data.load_category("folder", "horse", "test", image_dir=str(real_data),
                                max_images=8)
    assert images.shape == (8, 32, 32, 3)
    assert 20 < images.mean() < 235 and images.std() > 10


def test_category_all_reads_every_class_interleaved(tmp_path):
    write_folder(tmp_path)  # horse pixels 0, 10, …; cat pixels 1, 11, …
    images = data.load_category("folder", data.ALL_CATEGORIES, "train", image_dir=str(tmp_path))
    assert len(images) == 10
    np.testing.assert_array_equal(data.load_category(
        "folder", "all", "train", image_dir=str(tmp_path), max_images=4)[:, 0, 0, 0],
        [1, 0, 11, 10])  # cat and horse in turn (sorted class names), balanced


def test_in_order_keeps_order_and_stops_early():
    import threading

    started = []
    lock = threading.Lock()

    def square(x):
        with lock:
            started.append(x)
        return x * x

    assert list(data.in_order(square, range(50), workers=3)) == [x * x for x in range(50)]
    started.clear()
    for value in data.in_order(square, range(1000), workers=2):
        if value >= 9:  # stop after the fourth item
            break
    assert len(started) <= 4 + 2 * 2  # at most two per thread in flight beyond what was used


def test_small_files_are_read_in_a_loop_and_large_ones_on_threads(tmp_path, monkeypatch):
    threaded = []
    monkeypatch.setattr(data, "in_order", lambda function, items: threaded.append(1) or
                        [function(item) for item in items])
    rng = np.random.default_rng(0)
    for name, side in (("small", 8), ("large", 256)):
        folder = tmp_path / name
        folder.mkdir()
        pixels = rng.integers(0, 256, (3, side, side, 3), np.uint8)  # noise: PNG stays large
        files = []
        for i, image in enumerate(pixels):
            files.append(folder / f"{i}.png")
            Image.fromarray(image).save(files[-1])
        np.testing.assert_array_equal(np.stack(data.read_images(files)), pixels)
        assert threaded == ([1] if name == "large" else [])
