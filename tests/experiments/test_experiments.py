"""Experiment scripts end to end, as a user runs them (their main with flags set, in this process;
a few as true subprocesses), on tiny synthetic data."""

import json
import math

import numpy as np
import pytest
from conftest import run_script, write_folder, zhang_sized_bins
from PIL import Image

from jaxcolor.colorize import command as colorize_command
from jaxcolor.colorize.colorizer import load_colorizer

TINY = ["--source=synthetic", "--epochs=2", "--batch_size=32", "--num_filters=4",
        "--num_colours=6", "--num_samples=2"]
NUMBERS = ("train_loss", "val_loss", "val_accuracy")


def assert_outputs(out, models):
    rows = json.loads((out / "results.json").read_text())
    assert [row["model"] for row in rows] == models
    for row in rows:
        for key in ("epochs", "batch_size", "learning_rate", "train_loss", "val_loss",
                    "val_accuracy", "train_images_per_sec", "wall_seconds"):
            assert row[key] is not None, key
        assert len(row["history"]) == row["epochs"]
        assert 0 <= row["val_accuracy"] <= 100
    assert (out / "training_curve.png").stat().st_size > 1000
    assert len(list(out.glob("samples_*.png"))) == len(rows)
    text = (out / "results.md").read_text()
    assert "| model |" in text and "training_curve.png" in text
    for row in rows:  # results.md names the category, image source and counts of each row
        images = row["images"]
        assert (f"Category '{row['category']}': {images['train']:,} train / "
                f"{images['test']:,} test images from {images['source']}.") in text
    return rows


def test_runs_into_one_folder_keep_each_others_rows(tmp_path):
    """A rerun with another --learning_rate, and a run of another model, into one folder: every
    row stays, in results.json and results.md; rerunning one setting replaces only its row."""
    out = tmp_path / "shared"
    for args in (["--learning_rate=0.002"], ["--learning_rate=0.005"], ["--models=unet"],
                 ["--learning_rate=0.002", "--noresume"]):
        result = run_script("q2_classification", *TINY, "--epochs=1", *args,
                            f"--output_dir={out}")
        assert result.returncode == 0, result.stderr
    rows = assert_outputs(out, ["cnn", "unet", "cnn"])
    assert [row["learning_rate"] for row in rows] == [0.005, 0.001, 0.002]
    text = (out / "results.md").read_text()
    assert all(f"]({row['samples']})" in text for row in rows)


@pytest.fixture(scope="module")
def q2_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    runs = [run_script("q2_classification", *TINY, f"--output_dir={root / name}")
            for name in ("first", "again")]
    for result in runs:
        assert result.returncode == 0, result.stderr
    return root


@pytest.mark.xdist_group("q2_outputs")
def test_q2_writes_table_json_and_figures(q2_outputs):
    rows = assert_outputs(q2_outputs / "first", ["cnn"])
    assert rows[0]["experiment"] == "q2_classification"


@pytest.mark.xdist_group("q2_outputs")
def test_same_seed_gives_identical_results_json(q2_outputs):
    first, again = (json.loads((q2_outputs / name / "results.json").read_text())
                    for name in ("first", "again"))
    assert [{k: r[k] for k in NUMBERS} for r in first] == [
        {k: r[k] for k in NUMBERS} for r in again]
    assert [h["val_loss"] for h in first[0]["history"]] == [
        h["val_loss"] for h in again[0]["history"]]


@pytest.mark.xdist_group("q2_outputs")
def test_q3_compares_batch_sizes_and_q2(q2_outputs, tmp_path):
    out = tmp_path / "q3_unet"
    result = run_script("q3_unet", *TINY, "--batch_sizes=32,16", f"--output_dir={out}",
                        f"--compare_with={q2_outputs / 'first' / 'results.json'}")
    assert result.returncode == 0, result.stderr
    rows = assert_outputs(out, ["unet", "unet"])
    assert [row["batch_size"] for row in rows] == [32, 16]
    text = (out / "results.md").read_text()
    assert "Gradient norm" in text and "Best final validation accuracy: U-Net" in text
    assert "epoch   2/2" in result.stdout  # one progress line per epoch


@pytest.mark.parametrize("args, message", [
    (["--model=resnet"], "--model='resnet' is unknown"),
    (["--batch_size=0"], "--batch_size=0 must be a positive integer"),
    (["--epochs=-1"], "--epochs=-1 must be a positive integer"),
    (["--learning_rate=0"], "--learning_rate=0.0 must be positive"),
    (["--kernel=4"], "--kernel=4 must be a positive odd number"),
    (["--category=zebra", "--source=tfds"], "--category='zebra' is unknown"),
    (["--image_dir=/no/such/folder"], "--image_dir=/no/such/folder does not exist"),
    (["--batch_size=5000"], "--batch_size=5000 is larger than the 256 training images"),
    (["--batch_sizes=100,x"], "--batch_sizes='100,x' must be a comma-separated list"),
    (["--output_dir=/proc/nope"], "--output_dir=/proc/nope is not writable"),
    (["--temperature=0"], "--temperature=0.0 must lie in (0, 10]"),
    (["--learning_rate=1e12", "--epochs=1", "--batch_size=32", "--num_filters=4"],
     "training diverged in epoch 1"),
])
def test_bad_input_gives_one_line_and_no_traceback(args, message, tmp_path):
    defaults = ["--source=synthetic", f"--output_dir={tmp_path / 'out'}"]
    if any(a.startswith("--image_dir") for a in args):
        defaults = [f"--output_dir={tmp_path / 'out'}"]
    result = run_script("q3_unet", *defaults, *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_bad_input_on_the_command_line_is_one_line_and_status_2(tmp_path):
    result = run_script("q3_unet", "--source=synthetic", "--model=resnet",
                        f"--output_dir={tmp_path / 'out'}", in_process=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --model='resnet' is unknown")


@pytest.mark.parametrize("case, message", [
    ("empty", "holds no .png/.jpg images"),
    ("corrupt", "cannot read image"),
    ("mixed_sizes", "must share one size"),
    ("wrong_size", "train images are 30x30; the models pool twice by 2"),
    ("grey", "train/horse have no colour to learn"),
])
def test_bad_image_folder_gives_one_line_and_no_traceback(case, message, tmp_path):
    root = write_folder(tmp_path / "data", side=30 if case == "wrong_size" else 32)
    if case == "empty":
        for image in (root / "train" / "horse").iterdir():
            image.unlink()
    elif case == "corrupt":
        (root / "train" / "horse" / "0001.png").write_bytes(b"not a png")
    elif case == "mixed_sizes":
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "train/horse/0002.png")
    elif case == "grey":  # black-and-white photos saved as JPEGs
        for path in list((root / "train" / "horse").iterdir()):
            path.unlink()
            grey = np.random.default_rng(len(path.name)).integers(0, 256, (32, 32), np.uint8)
            Image.fromarray(grey).convert("RGB").save(path.with_suffix(".jpg"))
    # --num_colours=4: the generated folder's flat greys fill only a few colour cells.
    result = run_script("q2_classification", f"--image_dir={root}", "--epochs=1",
                        "--num_colours=4", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    if case == "corrupt":
        assert "0001.png" in errors[0]


def test_real_images_end_to_end(real_data, tmp_path):
    out = tmp_path / "real"
    result = run_script("q2_classification", f"--image_dir={real_data}", "--max_images=200",
                        "--epochs=2", "--batch_size=20", "--num_filters=8", "--num_samples=2",
                        f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    rows = assert_outputs(out, ["cnn"])
    history = rows[0]["history"]
    # Learned something: the second epoch's mean training cross-entropy is below the first's
    # and below a uniform guess over the 24 colours (log 24 ≈ 3.18).
    assert history[1]["train_loss"] < min(history[0]["train_loss"], math.log(24))


def test_q1_reports_several_epochs_with_measured_notes(tmp_path):
    out = tmp_path / "q1"
    result = run_script("q1_regression", *TINY, "--epochs=3", "--report_epochs=1,2",
                        f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "results.json").read_text())
    assert [(row["model"], row["epochs"]) for row in rows] == [
        ("regression_cnn", 1), ("regression_cnn", 2), ("regression_cnn", 3)]
    assert rows[1]["history"] == rows[2]["history"][:2]
    assert all(row["val_accuracy"] is None and row["val_loss"] > 0 for row in rows)
    assert all(row["colourfulness"] >= 0 and row["true_colourfulness"] > 0 for row in rows)
    text = (out / "results.md").read_text()
    assert "Why MSE on RGB is a poor loss" in text and "ΔE*ab" in text
    assert len(list(out.glob("samples_*.png"))) == 3


def test_q4_compares_models_with_interpolation(tmp_path):
    out = tmp_path / "q4"
    result = run_script("q4_super_resolution", *TINY, "--epochs=1", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    rows = assert_outputs(out, ["cnn", "unet"])
    assert all(row["task"] == "superres" and row["psnr"] > 0 for row in rows)
    for row in rows:  # every rendering scored; the flat metrics are the argmax rendering's
        assert set(row["quality_by_rendering"]) == {"argmax", "annealed_mean", "expected"}
        assert row["quality_by_rendering"]["argmax"]["psnr"] == row["psnr"]
    text = (out / "results.md").read_text()
    assert "| bilinear |" in text and "ground truth → palette (ceiling)" in text
    assert "rendering) vs" in text and "| expected |" in text


@pytest.mark.xdist_group("q2_outputs")
def test_report_gathers_results_beside_references(q2_outputs, tmp_path):
    results = tmp_path / "results"
    (results / "q2_classification").mkdir(parents=True)
    rows = json.loads((q2_outputs / "first" / "results.json").read_text())
    rows[0].update(epochs=25, batch_size=100, num_filters=32)  # a default-configuration row
    (results / "q2_classification" / "results.json").write_text(json.dumps(rows))
    (results / "q2_classification" / "colorizer.msgpack").write_bytes(b"model")
    output = tmp_path / "RESULTS.md"
    result = run_script("report", f"--results_dir={results}", f"--output={output}",
                        f"--publish_dir={tmp_path / 'published'}")
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert "## q2_classification" in text and "1.5496 / val 1.5649, 41%" in text
    assert "published/q2_classification/results.md" in text
    assert (tmp_path / "published" / "q2_classification" / "results.json").exists()
    assert not (tmp_path / "published" / "q2_classification" / "colorizer.msgpack").exists()
    missing = run_script("report", f"--results_dir={tmp_path / 'none'}")
    assert missing.returncode == 2 and "run an experiment first" in missing.stderr


def test_q5_draws_every_block_and_measures_it(tmp_path):
    out = tmp_path / "q5"
    result = run_script("q5_activations", *TINY, "--epochs=1", "--num_images=1",
                        f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "results.json").read_text())
    assert [(row["model"], row["task"]) for row in rows] == [
        ("cnn", "colourization"), ("unet", "colourization"), ("unet", "superres")]
    for row in rows:
        stats = row["activation_statistics"]
        assert [s["block"] for s in stats] == [f"block{i}" for i in range(1, 6)]
        assert [s["channels"] for s in stats] == [4, 8, 8, 4, 6]
        assert all(0 <= s["r_brightness"] <= 1 and 0 <= s["active"] <= 1 for s in stats)
    assert len(list(out.glob("activations_*.png"))) == 3
    assert "What early and late blocks respond to" in (out / "results.md").read_text()


def test_q6b_shows_pool_and_relu_commute(tmp_path):
    out = tmp_path / "q6b"
    result = run_script("q6b_pool_relu", "--repeats=1", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 3
    assert all(row["max_abs_diff"] == 0.0 and row["max_abs_grad_diff"] == 0.0 for row in rows)
    assert all(row["relu_after_pool_forward_ms"] > 0 for row in rows)
    assert "bit-identical" in (out / "results.md").read_text()


def test_q6a_varies_one_knob_at_a_time(tmp_path):
    out = tmp_path / "q6a"
    result = run_script("q6a_hyperparameters", *TINY, "--epochs=1", "--learning_rates=0.01,0.001",
                        "--batch_sizes=16", "--num_filters_list=8", "--kernels=5",
                        f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "results.json").read_text())
    knobs = [(r["learning_rate"], r["batch_size"], r["num_filters"], r["kernel"]) for r in rows]
    assert knobs == [(0.001, 32, 4, 3), (0.01, 32, 4, 3), (0.001, 16, 4, 3), (0.001, 32, 8, 3),
                     (0.001, 32, 4, 5)]
    assert "learning_rate (default 0.001) → change in val accuracy" in (
        out / "results.md").read_text()


def test_q6c_trains_plain_and_rebalanced_losses(tmp_path):
    out = tmp_path / "results" / "q6c"
    result = run_script("q6c_perceptual", *TINY, "--epochs=1", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "results.json").read_text())
    assert [r["loss"] for r in rows] == ["cross_entropy", "rebalanced"]
    assert rows[0]["history"] != rows[1]["history"]  # the loss really differs
    assert all(r["ssim"] is not None and 0 <= r["ab_auc"] <= 100 for r in rows)
    assert "rebalancing changes pixel accuracy" in (out / "results.md").read_text()


def test_q6d_colourizes_photos_larger_than_training_images(tmp_path):
    pytest.importorskip("skimage")
    out = tmp_path / "q6d"
    result = run_script("q6d_large_images", *TINY, "--epochs=1", "--photos=coffee",
                        f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads((out / "results.json").read_text())
    sizes = [(image["width"], image["height"]) for image in row["large_images"]]
    assert sizes == [(148, 100), (600, 400)]
    assert (out / "large_coffee_600x400.png").stat().st_size > 10_000
    bad = run_script("q6d_large_images", *TINY, "--photos=nosuchphoto", f"--output_dir={out}")
    assert bad.returncode == 2 and "nosuchphoto not in skimage.data" in bad.stderr


@pytest.fixture(scope="module")
def char_rnn(tmp_path_factory):
    root = tmp_path_factory.mktemp("charrnn")
    text = root / "text.txt"
    text.write_text("ROMEO:\nGood morrow, cousin.\n\nBENVOLIO:\nIs the day so young?\n" * 30)
    result = run_script("r0_train_char_rnn", f"--text={text}", "--hidden=12", "--batch_size=4",
                        "--optimizer=adam", "--learning_rate=0.01", "--steps=40",
                        "--log_every=20", f"--output_dir={root / 'r0'}")
    assert result.returncode == 0, result.stderr
    return root, text


@pytest.mark.xdist_group("char_rnn")
def test_r0_trains_and_writes_a_snapshot(char_rnn):
    root, _ = char_rnn
    (row,) = json.loads((root / "r0" / "results.json").read_text())
    assert row["steps_done"] >= 40 and row["held_out_loss"] > 0 and row["chars_per_sec"] > 0
    assert (root / "r0" / "model.npz").exists()


@pytest.mark.parametrize("script, args, expected", [
    ("r1_temperature", ["--temperatures=0.1,1,10", "--length=50"], "temperature 10"),
    ("r2_continuation", ["--prompt=ROMEO", "--samples=2", "--length=20"], "### sample 1"),
    ("r3_colon_newline", [], "':' after a typical previous state"),
    ("r4_dependency", ["--min_count=5"], "learned dependencies found by search"),
])
@pytest.mark.xdist_group("char_rnn")
def test_char_rnn_question_scripts(char_rnn, script, args, expected):
    root, text = char_rnn
    out = root / script
    result = run_script(script, f"--checkpoint={root / 'r0' / 'model.npz'}", f"--text={text}",
                        *args, f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert expected in (out / "results.md").read_text()
    rows = json.loads((out / "results.json").read_text())
    assert rows and {row["experiment"] for row in rows} == {script}
    # Another question's script refuses this folder: its rows would be replaced.
    other = "r2_continuation" if script != "r2_continuation" else "r1_temperature"
    refused = run_script(other, f"--checkpoint={root / 'r0' / 'model.npz'}", f"--text={text}",
                         f"--output_dir={out}")
    assert refused.returncode == 2 and f"holds the results of {script}" in refused.stderr


def test_q7_names_a_bad_bins_file_before_training(tmp_path):
    bins_file = tmp_path / "bins.npy"
    np.save(bins_file, np.zeros((4, 3)))
    result = run_script("q7_lab", *TINY, f"--ab_bins_file={bins_file}",
                        f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: --ab_bins_file={bins_file}: expected (Q, 2) ab bin centres" in result.stderr
    assert "epoch" not in result.stdout


def test_char_rnn_missing_snapshot_is_one_line(tmp_path):
    result = run_script("r1_temperature", f"--checkpoint={tmp_path / 'none.npz'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "does not exist; train one with experiments/r0_train_char_rnn.py" in result.stderr


def test_q7_compares_rgb_and_lab_models_and_its_colorizer_runs_on_any_size(tmp_path, capsys):
    out = tmp_path / "q7"
    bins_file = tmp_path / "pts_in_hull.npy"  # a 313-bin list, as Zhang et al. publish
    np.save(bins_file, zhang_sized_bins())
    result = run_script("q7_lab", *TINY, "--epochs=1", "--max_images=64", "--hflip",
                        f"--ab_bins_file={bins_file}", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert "task lab_bins: CIE Lab, 313 ab bins" in result.stdout + result.stderr
    rows = json.loads((out / "results.json").read_text())
    assert [r["task"] for r in rows] == ["colourization", "lab_regression", "lab_bins"]
    assert all(r["hflip"] for r in rows) and len(list(out.glob("samples_*_hflip_e1.png"))) == 3
    assert rows[2]["loss"] == "rebalanced"
    assert set(rows[2]["quality_by_rendering"]) == {"argmax", "annealed_mean", "expected"}
    comparison = json.loads((out / "comparison.json").read_text())
    table = comparison["rows"]
    sweep_methods = {(r["method"], r["rendering"]) for r in comparison["temperature_sweep"]}
    assert ("Lab ab bins", "T=0.38") in sweep_methods and ("RGB-24 classes", "T=2") in sweep_methods
    calibrated = comparison["calibrated"]
    assert [r["method"] for r in calibrated] == ["RGB-24 classes", "Lab ab bins"]
    assert all("calibrated on training images" in r["rendering"] for r in calibrated)
    methods = {r["method"] for r in table}
    assert {"baseline: grey", "baseline: mean colour", "RGB-24 classes", "Lab regression",
            "Lab ab bins"} <= methods
    grey = next(r for r in table if r["method"] == "baseline: grey")
    assert grey["colourfulness"] < 1.0  # a = b = 0 is grey
    assert all(0 <= r["ab_auc_rebalanced"] <= 100 for r in table)
    text = (out / "results.md").read_text()
    assert "Verdict" in text and "rebalanced AuC" in text and "calibrated on training" in text
    assert (out / "comparison.png").stat().st_size > 1000

    # The command: a 100×60 grey image in, a 100×60 colour image out; unreadable files named.
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 100), np.uint8)).save(photo)
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    options = ["--out", str(tmp_path / "colour"), "--checkpoint", str(out / "colorizer.msgpack")]
    capsys.readouterr()
    assert colorize_command.main(["colorize", str(photo), *options]) == 0
    with Image.open(tmp_path / "colour" / "photo.png") as image:
        assert image.size == (100, 60) and image.mode == "RGB"
    colorizer = load_colorizer(out / "colorizer.msgpack")
    assert colorizer.ab_bins.shape == (313, 2)
    assert colorizer.temperature == calibrated[1]["temperature"]  # decodes as calibrated
    assert colorize_command.main(["colorize", str(broken), *options]) == 1
    assert f"cannot read image {broken}" in capsys.readouterr().err
    assert colorize_command.main(["colorize", str(photo), *options[:-1], str(photo)]) == 2
    assert "is not a jaxcolor colorizer file" in capsys.readouterr().err


def test_output_folder_checks_of_concurrent_processes_do_not_collide(tmp_path):
    """Every process of a --distributed run checks the same --output_dir at once."""
    from concurrent.futures import ThreadPoolExecutor

    from jaxcolor.results import prepare_output_dir

    out = tmp_path / "shared"
    with ThreadPoolExecutor(8) as pool:
        checked = list(pool.map(lambda _: prepare_output_dir(str(out)), range(200)))
    assert checked == [out] * 200 and list(out.iterdir()) == []  # no probe files left


def test_helpshort_lists_the_shared_flags_beside_the_script_s_own():
    result = run_script("q3_unet", "--helpshort", in_process=False)
    for flag in ("--epochs", "--image_dir", "--batch_size", "--checkpoint_every",
                 "--batch_sizes", "--compare_with"):
        assert f"  {flag}:" in result.stdout, flag
    assert "Checkpoint every N epochs; 0: only the reported" in result.stdout


def test_the_char_rnn_trainer_s_helpshort_lists_its_flags_and_no_snapshot_flag():
    result = run_script("r0_train_char_rnn", "--helpshort", in_process=False)
    for flag in ("--text", "--seed", "--output_dir", "--hidden", "--seq_length", "--optimizer",
                 "--max_seconds"):
        assert f"  {flag}:" in result.stdout, flag
    assert "--checkpoint" not in result.stdout  # r0 writes a snapshot, it loads none


@pytest.mark.parametrize("text, message", [
    ("too short", "holds only 9 characters; the char-RNN needs at least 100."),
    ("x" * 150, "is too short for 32 streams of --seq_length=25: it needs at least 832 "
                "characters."),
])
def test_a_short_text_names_the_minimum_length(text, message, tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(text)
    result = run_script("r0_train_char_rnn", f"--text={path}", "--batch_size=32", "--steps=1",
                        f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.xdist_group("q2_outputs")
def test_another_experiment_s_output_dir_is_refused_and_its_results_kept(q2_outputs):
    q2_dir = q2_outputs / "first"
    before = (q2_dir / "results.json").read_text()
    result = run_script("q3_unet", *TINY, f"--output_dir={q2_dir}")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: --output_dir={q2_dir} holds the results of q2_classification; this run "
        f"(q3_unet) would replace them. Use another --output_dir.")
    assert (q2_dir / "results.json").read_text() == before


def test_q8_compares_the_newer_edition_s_nets_with_q2_and_checks_padding(q2_outputs, tmp_path):
    out = tmp_path / "q8_newer_edition"
    result = run_script("q8_newer_edition", *TINY, "--batch_sizes=16", f"--output_dir={out}",
                        f"--compare_with={q2_outputs / 'first' / 'results.json'}")
    assert result.returncode == 0, result.stderr
    rows = assert_outputs(out, ["pool_upsample", "conv_transpose", "unet_transpose",
                                "unet_transpose"])
    assert [row["batch_size"] for row in rows] == [32, 32, 32, 16]
    text = (out / "results.md").read_text()
    assert "| 4 | 1 | 0 | 32 → 16, 16 → 32 | 32 → 17, 16 → 31 |" in text  # kernel 4, run
    assert "Batch size against validation loss (unet_transpose" in text
    assert "Strided and transposed convolutions" in text
    assert "| cnn |" in text  # q2's CNN rows beside the newer nets


def test_q8_recipe_reports_each_ingredient_over_seeds(tmp_path):
    out = tmp_path / "q8_recipe"
    result = run_script("q8_recipe", *TINY, "--seeds=0,1", "--ingredients=constant,cosine",
                        f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "results.json").read_text())
    assert [(row["lr_schedule"], row["seed"]) for row in rows] == [
        ("constant", 0), ("constant", 1), ("cosine", 0), ("cosine", 1)]
    assert rows[0]["val_accuracy"] != rows[2]["val_accuracy"]  # the schedule changed training
    text = (out / "results.md").read_text()
    assert "| constant | 0, 1 |" in text and "| cosine | 0, 1 |" in text
    bad = run_script("q8_recipe", *TINY, "--ingredients=cosine,adamw", f"--output_dir={out}")
    assert bad.returncode != 0 and "unknown adamw" in bad.stderr


def test_precision_compares_bfloat16_with_float32_per_model(tmp_path):
    out = tmp_path / "precision"
    # XLA's convolutions: bfloat16 on any CPU (the native ones need AVX512_BF16)
    result = run_script("precision", *TINY, "--models=cnn", "--seeds=0", "--conv_impl=xla",
                        f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "results.json").read_text())
    assert [(row["precision"], row["seed"]) for row in rows] == [("float32", 0), ("bfloat16", 0)]
    text = (out / "results.md").read_text()
    assert "| cnn | float32 | 0 |" in text and "| cnn | bfloat16 | 0 |" in text
    assert "`cnn`: bfloat16's mean final accuracy is" in text


def test_q0_trains_from_scratch_offline_and_checks_backprop(tmp_path):
    out = tmp_path / "q0"
    result = run_script("q0_from_scratch", "--dataset=digits", "--epochs=3", "--hidden=16",
                        "--regression_steps=3000", "--logistic_steps=300",
                        f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    linear, logistic, net = json.loads((out / "results.json").read_text())
    assert linear["weights_max_abs_difference"] < 1e-3 * linear["weights_max_abs"]
    assert logistic["test_accuracy"] > 90 and logistic["gradient_max_relative_error"] < 1e-5
    assert net["model"] == "network_64-16-10" and len(net["history"]) == 3
    assert net["test_accuracy"] > 80 and net["backprop_max_relative_error"] < 1e-5
    assert (out / "curves.png").stat().st_size > 1000
    assert (out / "misclassified.png").stat().st_size > 1000
    assert "BP1–BP4 vs jax.grad" in (out / "results.md").read_text()
    bad = run_script("q0_from_scratch", "--dataset=digits", "--epochs=0", f"--output_dir={out}")
    assert bad.returncode != 0 and "--epochs=0 must be a positive integer" in bad.stderr


def test_the_convolution_implementation_is_a_setting_recorded_in_every_row(tmp_path,
                                                                          monkeypatch):
    """--conv_impl=xla trains with XLA's convolutions and says so in its row; the default
    (auto) records what ran; --conv_impl=native where the kernels cannot run is one line."""
    from jaxcolor.models import conv_implementation

    for impl in ("auto", "xla"):
        result = run_script("q2_classification", *TINY, "--epochs=1", f"--conv_impl={impl}",
                            f"--output_dir={tmp_path / impl}")
        assert result.returncode == 0, result.stderr
        (row,) = json.loads((tmp_path / impl / "results.json").read_text())
        assert row["conv_implementation"] == conv_implementation(impl)
    assert json.loads((tmp_path / "xla" / "results.json").read_text())[0][
        "conv_implementation"] == "xla"
    monkeypatch.setenv("JAXCOLOR_NATIVE", "0")
    refused = run_script("q2_classification", *TINY, "--conv_impl=native",
                         f"--output_dir={tmp_path / 'native'}")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: --conv_impl=native: the native CPU kernels run on")
