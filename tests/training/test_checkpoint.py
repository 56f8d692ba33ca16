"""Checkpoints: exact resume (in process and after SIGKILL), divergence, mismatched runs."""

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import REPO, fit_task, model_for, run_script, tiny_colour_task
from etils import epath

from jaxcolor.errors import UserError
from jaxcolor.training.checkpoint import CheckpointPolicy, Checkpoints

FINGERPRINT = {"model": "cnn", "learning_rate": 0.01}
NUMBERS = ("epoch", "train_loss", "val_loss", "val_accuracy")


@pytest.fixture(scope="module")
def tiny_task():
    return tiny_colour_task(seed=1)


def fit(task, epochs, checkpoints=None):
    model = model_for("cnn", 4, task)
    return fit_task(model, task, epochs=epochs, batch_size=8, learning_rate=0.01, seed=0,
                     log=lambda line: None, checkpoints=checkpoints)


def numbers(history):
    return [{k: dataclasses.asdict(r)[k] for k in NUMBERS} for r in history]


def assert_same_state(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_resume_equals_uninterrupted_run_bit_for_bit(tiny_task, tmp_path):
    uninterrupted = fit(tiny_task, 4)
    first = Checkpoints(tmp_path, FINGERPRINT, epochs=2)
    fit(tiny_task, 2, first)
    first.close()
    second = Checkpoints(tmp_path, FINGERPRINT, epochs=4)
    resumed = fit(tiny_task, 4, second)
    assert numbers(resumed.history) == numbers(uninterrupted.history)
    assert_same_state(resumed.state, uninterrupted.state)
    assert second.epochs() == [3, 4]  # keep=2 newest


def test_a_write_cut_short_is_ignored(tiny_task, tmp_path):
    first = Checkpoints(tmp_path, FINGERPRINT, epochs=3)
    fit(tiny_task, 2, first)
    first.close()
    # What a kill during the epoch-3 save leaves: Orbax's temporary folder, never renamed.
    partial = tmp_path / "3.orbax-checkpoint-tmp-1234567890"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "half_written").write_bytes(b"\0" * 10)
    again = Checkpoints(tmp_path, FINGERPRINT, epochs=3)
    assert again.epochs() == [1, 2]
    assert numbers(fit(tiny_task, 3, again).history) == numbers(fit(tiny_task, 3).history)


def _damage(folder, how):
    """A real damaged checkpoint: its largest OCDBT data file cut short, or its metadata
    garbled."""
    if how == "truncated_data":
        data = max((path for path in (folder / "state").rglob("*") if path.is_file()
                    and "ocdbt" in str(path)), key=lambda path: path.stat().st_size)
        os.truncate(data, data.stat().st_size // 3)
    else:
        (folder / "meta" / "metadata").write_text('{"fingerprint": {"model": "cn')


@pytest.mark.parametrize("how", ["truncated_data", "garbled_metadata"])
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(
        tiny_task, tmp_path, how, caplog):
    first = Checkpoints(tmp_path, FINGERPRINT, epochs=3)
    fit(tiny_task, 3, first)
    first.close()
    _damage(tmp_path / "3", how)
    lines = []
    again = Checkpoints(tmp_path, FINGERPRINT, epochs=4)
    resumed = fit_task(model_for("cnn", 4, tiny_task), tiny_task, epochs=4, batch_size=8,
                       learning_rate=0.01, seed=0, log=lines.append, checkpoints=again)
    warning = next(line for line in lines if line.startswith("warning:"))
    assert f"the checkpoint of epoch 3 in {tmp_path} cannot be read" in warning
    assert warning.endswith(f"moved to {tmp_path / 'damaged-3'}")
    assert f"resuming after epoch 2 from {tmp_path}" in lines
    assert numbers(resumed.history) == numbers(fit(tiny_task, 4).history)  # epoch 3 retrained
    assert again.epochs() == [3, 4] and (tmp_path / "damaged-3" / "state").is_dir()
    if how == "truncated_data":  # The failed read's other reads may end at any time (during
        # the restore's settling or later), each logged by asyncio as an exception never
        # retrieved: those naming the damaged checkpoint's files are left out, real ones too.
        kept = "Task exception was never retrieved\nfuture: <Task exception=ValueError('other')>"
        asyncio_log = logging.getLogger("asyncio")
        asyncio_log.error("Task exception was never retrieved\nfuture: <Task exception="
                          f"ValueError(\"{{'path': '{tmp_path / '3' / 'state'}/'}}\")>")
        asyncio_log.error(kept)
        assert [record.getMessage() for record in caplog.records
                if record.name == "asyncio"] == [kept]



def test_when_no_checkpoint_can_be_read_one_error_names_noresume(tiny_task, tmp_path):
    first = Checkpoints(tmp_path, FINGERPRINT, epochs=2, policy=CheckpointPolicy(keep=1))
    fit(tiny_task, 2, first)
    first.close()
    _damage(tmp_path / "2", "truncated_data")
    with pytest.raises(UserError, match=r"the checkpoint of epoch 2 in .* cannot be read "
                                        r"\(.*\); use --noresume to start this run afresh"):
        fit(tiny_task, 3, Checkpoints(tmp_path, FINGERPRINT, epochs=3))
    assert (tmp_path / "2" / "state").is_dir()  # nothing moved or deleted


def test_reported_epochs_are_kept_and_interval_respected(tiny_task, tmp_path):
    checkpoints = Checkpoints(tmp_path, FINGERPRINT, epochs=6, keep_epochs=[1],
                              policy=CheckpointPolicy(every=2, keep=1))
    fit(tiny_task, 6, checkpoints)
    assert checkpoints.epochs() == [1, 6]  # 2 and 4 were saved, then superseded


def test_divergence_names_the_step_and_keeps_the_last_good_checkpoint(tiny_task, tmp_path):
    checkpoints = Checkpoints(tmp_path, FINGERPRINT, epochs=3)
    good = fit(tiny_task, 2, checkpoints)
    poisoned = dataclasses.replace(tiny_task, train_inputs=np.full_like(tiny_task.train_inputs,
                                                                        np.nan))
    with pytest.raises(UserError, match=r"diverged in epoch 3, step 1 of 4: the loss is nan.*"
                                        r"last good checkpoint \(epoch 2\) is kept"):
        fit(poisoned, 3, checkpoints)
    assert checkpoints.epochs() == [1, 2]
    state, history = checkpoints.restore(2, like=good.state)
    assert_same_state(state, good.state)
    assert numbers(history) == numbers(good.history)


def test_checkpoint_of_a_different_run_is_refused_with_the_difference(tiny_task, tmp_path):
    fit(tiny_task, 1, Checkpoints(tmp_path, FINGERPRINT, epochs=1))
    other = Checkpoints(tmp_path, {**FINGERPRINT, "learning_rate": 0.1}, epochs=2)
    with pytest.raises(UserError, match=r"learning_rate 0.01 \(checkpoint\) vs 0.1 \(now\)"):
        fit(tiny_task, 2, other)
    afresh = Checkpoints(tmp_path, {**FINGERPRINT, "learning_rate": 0.1}, epochs=1,
                         policy=CheckpointPolicy(resume=False))
    assert afresh.epochs() == []  # --noresume deletes the old run's checkpoints


def test_a_setting_a_checkpoint_does_not_record_counts_as_its_default(tiny_task, tmp_path):
    """Checkpoints written before a setting existed resume with its default, and are refused
    with any other value, naming it."""
    fit(tiny_task, 1, Checkpoints(tmp_path, FINGERPRINT, epochs=1))
    newer = {**FINGERPRINT, "hflip": False, "warmup_epochs": 0, "lr_schedule": "constant",
             "precision": "float32"}
    assert len(fit(tiny_task, 2, Checkpoints(tmp_path, newer, epochs=2)).history) == 2
    with pytest.raises(UserError, match=r"hflip False \(checkpoint\) vs True \(now\)"):
        fit(tiny_task, 3, Checkpoints(tmp_path, {**newer, "hflip": True}, epochs=3))
    # A run in the other precision has its own name (and folder); pointed at this one's
    # checkpoints it is refused in one line rather than mixed in.
    with pytest.raises(UserError, match=r"precision 'float32' \(checkpoint\) vs 'bfloat16' "
                                        r"\(now\)"):
        fit(tiny_task, 3, Checkpoints(tmp_path, {**newer, "precision": "bfloat16"}, epochs=3))


def test_checkpoints_beyond_the_requested_epochs_are_refused(tiny_task, tmp_path):
    fit(tiny_task, 4, Checkpoints(tmp_path, FINGERPRINT, epochs=4))
    with pytest.raises(UserError, match="start after epoch 3, beyond --epochs=2"):
        fit(tiny_task, 2, Checkpoints(tmp_path, FINGERPRINT, epochs=2))


TINY = ["--source=synthetic", "--batch_size=32", "--num_filters=4", "--num_colours=6",
        "--num_samples=2", "--epochs=12"]


def script(*args):
    return [sys.executable, str(REPO / "experiments" / "q2_classification.py"), *TINY, *args]


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_results(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    process = subprocess.Popen(script(f"--output_dir={killed_dir}"), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    for line in process.stdout:
        if line.startswith("epoch   2/12") and "[checkpoint]" in line:
            process.send_signal(signal.SIGKILL)
            break
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert not (killed_dir / "results.json").exists()  # killed mid-run

    resumed = run_script("q2_classification", *TINY, f"--output_dir={killed_dir}")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stdout
    clean = run_script("q2_classification", *TINY, f"--output_dir={clean_dir}")
    assert clean.returncode == 0, clean.stderr

    rows = [json.loads((d / "results.json").read_text())[0] for d in (killed_dir, clean_dir)]
    for key in ("train_loss", "val_loss", "val_accuracy", "psnr", "ssim", "ab_auc"):
        assert rows[0][key] == rows[1][key], key
    assert [{k: r[k] for k in NUMBERS} for r in rows[0]["history"]] == [
        {k: r[k] for k in NUMBERS} for r in rows[1]["history"]]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
@pytest.mark.slow
def test_a_stopped_run_says_what_is_kept_in_one_line_and_resumes(tmp_path, stop):
    """Ctrl-C (or a scheduler's SIGTERM) after epoch 1's checkpoint of a 4-epoch run: exit 130,
    no traceback, one line naming the kept checkpoint; the same command then finishes. The
    child starts with SIGINT's default action, as from a terminal: a test run started in the
    background of a shell inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt."""
    command = script(f"--output_dir={tmp_path}", "--epochs=4")
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # a handler resets on exec
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"},
                                   cwd=REPO)
    finally:
        signal.signal(signal.SIGINT, inherited)
    for line in process.stdout:
        if line.startswith("epoch   1/4") and "[checkpoint]" in line:
            process.send_signal(stop)
            break
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted in epoch "), stderr
    assert f"checkpoint is kept in {tmp_path / 'checkpoints'}" in lines[0]
    assert lines[0].endswith("run the same command to resume.")
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stdout
    assert json.loads((tmp_path / "results.json").read_text())[0]["epochs"] == 4


@pytest.mark.slow
def test_a_script_resumes_past_a_damaged_checkpoint_with_one_warning(tmp_path):
    first = run_script("q2_classification", *TINY, "--epochs=2", f"--output_dir={tmp_path}")
    assert first.returncode == 0, first.stderr
    (run,) = (tmp_path / "checkpoints").iterdir()
    _damage(run / "2", "truncated_data")
    resumed = subprocess.run(script(f"--output_dir={tmp_path}", "--epochs=3"),
                             capture_output=True, text=True, cwd=REPO, timeout=300,
                             env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert resumed.returncode == 0 and resumed.stderr == "", resumed.stderr
    warnings = [line for line in resumed.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "the checkpoint of epoch 2" in warnings[0]
    assert "resuming after epoch 1" in resumed.stdout
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [len(row["history"]) for row in rows] == [2, 3]  # the 2-epoch row is kept


def test_script_refuses_a_checkpoint_of_another_config_and_overwrites_nothing(tmp_path):
    out = tmp_path / "out"
    first = run_script("q2_classification", *TINY, f"--output_dir={out}", "--epochs=1",
                       "--conv_init=lecun")
    assert first.returncode == 0, first.stderr
    before = (out / "results.json").read_text()
    second = run_script("q2_classification", *TINY, f"--output_dir={out}", "--epochs=2")
    assert second.returncode == 2 and "Traceback" not in second.stderr
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "conv_init 'lecun' (checkpoint) vs 'pytorch' (now)" in errors[0]
    assert (out / "results.json").read_text() == before


@pytest.fixture(params=["folder", "gs"])
def shared_checkpoint_dir(request, tmp_path, monkeypatch):
    """Where every machine finds the checkpoints: a local folder, or a Cloud Storage bucket on
    a local stand-in (reached by Orbax's path layer, etils.epath → gcsfs, and by its array
    writer, TensorStore's GCS driver)."""
    if request.param == "folder":
        yield tmp_path / "bucket" / "ckpt"
        return
    import cloud_storage

    with cloud_storage.serve("bucket") as url:
        for name, value in (("STORAGE_EMULATOR_HOST", url), ("TENSORSTORE_GCS_HTTP_URL", url),
                            ("GOOGLE_CLOUD_PROJECT", "test")):
            monkeypatch.setenv(name, value)
        yield "gs://bucket/ckpt"


def test_a_new_machine_resumes_from_a_shared_checkpoint_dir(shared_checkpoint_dir, tmp_path):
    """As after a preemption: the first machine's results folder is gone, the checkpoints live
    in --checkpoint_dir (a bucket on the cloud), and the same command elsewhere continues."""
    first = run_script("q2_classification", *TINY, "--epochs=1",
                       f"--output_dir={tmp_path / 'vm1'}",
                       f"--checkpoint_dir={shared_checkpoint_dir}")
    assert first.returncode == 0, first.stderr
    assert not (tmp_path / "vm1" / "checkpoints").exists()
    run = "cnn_colourization_cross_entropy_bs32_lr0.001_nf4_k3_s0"
    assert [p.name for p in epath.Path(shared_checkpoint_dir).iterdir()] == [run]
    second = run_script("q2_classification", *TINY, "--epochs=2",
                        f"--output_dir={tmp_path / 'vm2'}",
                        f"--checkpoint_dir={shared_checkpoint_dir}")
    assert second.returncode == 0, second.stderr
    assert f"resuming after epoch 1 from {shared_checkpoint_dir}/{run}" in second.stdout
    history = json.loads((tmp_path / "vm2" / "results.json").read_text())[0]["history"]
    assert [record["epoch"] for record in history] == [1, 2]
