"""TensorBoard event files of a run: read back with TensorBoard's own reader, and served by a
real TensorBoard on localhost."""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from conftest import run_script
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

TINY = ["--source=synthetic", "--epochs=2", "--batch_size=32", "--num_filters=4",
        "--num_colours=6", "--num_samples=2"]
STEPS_PER_EPOCH = 256 // 32  # the synthetic source's training images / batch
pytestmark = pytest.mark.xdist_group("tensorboard")  # one run shared by the module


@pytest.fixture(scope="module")
def board_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("q2")
    result = run_script("q2_classification", *TINY, f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    (run,) = (out / "tensorboard").iterdir()
    return run


def test_a_run_leaves_step_losses_epoch_scalars_samples_quality_and_hparams(board_dir):
    events = event_accumulator.EventAccumulator(str(board_dir), size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
    events.Reload()
    steps = [event.step for event in events.Scalars("train/loss")]
    assert steps == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    for tag in ("val/loss", "val/accuracy", "speed/train_images_per_sec"):
        assert [e.step for e in events.Scalars(tag)] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert 0 <= events.Scalars("val/accuracy")[-1].value <= 100
    assert events.Scalars("quality/argmax/psnr")[0].value > 0
    images = events.Images("samples")
    assert len(images) == 2 and (images[0].width, images[0].height) == (3 * 32, 2 * 32)
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["model"].string_value == "cnn" and hparams["batch_size"].number_value == 32


def test_no_event_files_with_notensorboard(tmp_path):
    result = run_script("q2_classification", *TINY, "--notensorboard", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "tensorboard").exists()


def test_a_tensorboard_server_on_localhost_serves_the_scalars(board_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", f"--logdir={board_dir.parent}",
         "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    query = urllib.parse.urlencode({"run": board_dir.name, "tag": "val/loss"})
    url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?{query}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    points = json.loads(response.read())
                if points:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "TensorBoard did not serve the scalars"
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert [step for _, step, _ in points] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_refused_write_is_one_line_without_the_writer_thread_s_traceback(tmp_path):
    """The disk refuses the events (a full disk, at the file the writer's thread writes): the
    run's next write or close is one UserError, and the thread's own report is left out."""
    import errno

    from jaxcolor.errors import UserError
    from jaxcolor.runner.tensorboard import RunLog

    class FullDisk:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

        def close(self):
            pass

    log = RunLog(tmp_path, {"seed": 0})
    log._writer._async_writer._writer._writer = FullDisk()  # the events' file, full
    with pytest.raises(UserError, match="cannot write TensorBoard events in .*: No space left "
                                        "on device; --notensorboard runs without them"):
        for step in range(1000):  # until the thread's failure reaches the caller
            log._write(step)
            log._flush()
            time.sleep(0.001)
    log.close()  # the thread's own report would fail the test (an unhandled thread exception)
