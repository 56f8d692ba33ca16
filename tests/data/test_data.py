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


def _png(path, pixels: np.ndarray, colour_type: int) -> None:
    """A PNG written byte by byte (Pillow cannot write 16-bit colour): ``pixels`` uint16
    (H, W, channels), big-endian samples, colour type 0 (grey) or 2 (RGB)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    height, width = pixels.shape[:2]
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type,
                                                  0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_sixteen_bit_images_are_scaled_to_eight_bits(tmp_path):
    levels = np.array([[0, 257 * 10], [257 * 128, 65535]], np.uint16)  # 8-bit 0, 10, 128, 255
    _png(tmp_path / "grey.png", levels[..., None], colour_type=0)
    _png(tmp_path / "rgb.png", np.stack([levels, levels[::-1], levels.T], -1), colour_type=2)
    grey = data.read_image(tmp_path / "grey.png")
    np.testing.assert_array_equal(grey[..., 0], [[0, 10], [128, 255]])
    assert (grey == grey[..., :1]).all()
    rgb = data.read_image(tmp_path / "rgb.png")
    np.testing.assert_array_equal(rgb, np.stack([levels, levels[::-1], levels.T], -1) // 257)


def test_float_images_in_0_1_are_scaled_and_others_refused(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)).save(tmp_path / "ok.tiff")
    np.testing.assert_array_equal(data.read_image(tmp_path / "ok.tiff")[..., 1],
                                  [[0, 128], [255, 64]])
    Image.fromarray(np.array([[0.0, 7.0]], np.float32)).save(tmp_path / "bad.tiff")
    with pytest.raises(UserError, match=r"bad.tiff: its F-mode values span 0..7"):
        data.read_image(tmp_path / "bad.tiff")


def test_palette_images_keep_their_colours(tmp_path):
    rgb = np.array([[[200, 30, 40], [10, 220, 90]], [[0, 0, 255], [200, 30, 40]]], np.uint8)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(
        tmp_path / "p.png")
    np.testing.assert_array_equal(data.read_image(tmp_path / "p.png"), rgb)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_are_composited_on_white(tmp_path, mode):
    rgba = np.array([[[200, 0, 0, 255], [0, 0, 200, 0]], [[100, 100, 100, 0], [0, 200, 0, 128]]],
                    np.uint8)
    image = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "P":  # a palette with one fully transparent entry
        image = Image.fromarray(rgba[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE,
                                                       colors=4)
        image.info["transparency"] = int(np.asarray(image)[0, 1])
    image.save(tmp_path / "a.png")
    pixels = data.read_image(tmp_path / "a.png").astype(int)
    assert (pixels[0, 1] == 255).all()  # transparent → the background, not the hidden colour
    if mode == "RGBA":
        np.testing.assert_array_equal(pixels[0, 0], [200, 0, 0])
        np.testing.assert_array_equal(pixels[1, 0], [255, 255, 255])
        np.testing.assert_allclose(pixels[1, 1], [127, 228, 127], atol=1)  # half on white


def test_a_colourless_training_set_is_refused_naming_where(tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):  # greyscale photos saved as RGB JPEGs: JPEG's chroma noise stays small
        grey = rng.integers(0, 256, (32, 32), np.uint8)
        Image.fromarray(grey).convert("RGB").save(folder / f"{i}.jpg", quality=75)
    images = np.stack(data.read_images(sorted(folder.iterdir())))
    with pytest.raises(UserError, match="the training images in grey/horse have no colour"):
        data.check_has_colour(images, "grey/horse")
    data.check_has_colour(data.synthetic_images(8), "synthetic")  # colour images pass
