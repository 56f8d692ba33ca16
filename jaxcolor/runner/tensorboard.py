"""TensorBoard event files of a run, written with TensorBoard's own writer and protos (no
TensorFlow): train loss per step; validation loss, accuracy and img/s and a sample grid per
epoch; the image-quality metrics at the end; the run's settings as hparams.

    tensorboard --logdir results/
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.summary.writer import event_file_writer
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from jaxcolor.errors import UserError

# TensorBoard's switch to its own TensorFlow stub (what its no_tensorflow build adds): without it
# the writer imports TensorFlow wherever that is installed (Colab's GPU runtimes), which costs
# seconds of start-up and prints log lines, for a file writer.
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


class RunLog:
    """The event file of one run in ``directory``; ``hparams`` (scalars and strings) are written
    first, as the run's session start (TensorBoard's HPARAMS tab)."""

    def __init__(self, directory: Path, hparams: dict[str, Any]) -> None:
        self.directory = directory
        self._failed = False  # a write failed: nothing more is written
        _writer_thread_reports_left_out()
        with self._writing():
            self._writer = EventFileWriter(str(directory))
        self.last_step = 0  # the highest step written
        session = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
        for name, value in hparams.items():
            if isinstance(value, bool):
                session.hparams[name].bool_value = value
            elif isinstance(value, (int, float)):
                session.hparams[name].number_value = value
            elif value is not None:
                session.hparams[name].string_value = str(value)
        content = plugin_data_pb2.HParamsPluginData(session_start_info=session, version=0)
        metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=hparams_metadata.PLUGIN_NAME, content=content.SerializeToString()))
        self._write(0, summary_pb2.Summary.Value(tag=hparams_metadata.SESSION_START_INFO_TAG,
                                                 metadata=metadata))
        self._flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._write(step, *(summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
                            for tag, value in values.items() if value is not None))
        self._flush()  # TensorBoard shows it live

    def step_losses(self, first_step: int, losses: np.ndarray) -> None:
        """``losses[i]`` as train/loss at step ``first_step + i``."""
        for offset, loss in enumerate(np.asarray(losses, np.float64)):
            self._write(first_step + offset,
                        summary_pb2.Summary.Value(tag="train/loss", simple_value=float(loss)))

    def image(self, step: int, tag: str, rgb: np.ndarray) -> None:
        """One float RGB image in [0, 1] (H, W, 3), PNG-encoded."""
        pixels = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        png = io.BytesIO()
        Image.fromarray(pixels).save(png, format="PNG")
        image = summary_pb2.Summary.Image(height=pixels.shape[0], width=pixels.shape[1],
                                          colorspace=3, encoded_image_string=png.getvalue())
        self._write(step, summary_pb2.Summary.Value(
            tag=tag, image=image, metadata=image_metadata.create_summary_metadata(
                display_name=tag, description="")))
        self._flush()

    def close(self) -> None:
        """Write what is pending and close the file; after a failed write, quietly."""
        if not self._failed:
            with self._writing():
                self._writer.close()
            return
        with contextlib.suppress(Exception):
            self._writer.close()

    def _write(self, step: int, *values: summary_pb2.Summary.Value) -> None:
        self.last_step = max(self.last_step, step)
        with self._writing():
            self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=step,
                                                   summary=summary_pb2.Summary(value=values)))

    def _flush(self) -> None:
        with self._writing():
            self._writer.flush()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """A failed write (the writer's thread passes its OSError on) as one UserError."""
        try:
            yield
        except OSError as err:
            self._failed = True
            raise UserError(f"cannot write TensorBoard events in {self.directory}: "
                            f"{err.strerror or err}; --notensorboard runs without them.") from None


def _writer_thread_reports_left_out() -> None:
    """TensorBoard's writer thread keeps a failed write for the writer's next call (which
    :class:`RunLog` says in one line) and then raises it again, so Python would also print the
    thread's traceback; that report is left out, by a ``threading.excepthook`` around the one in
    place (installed again if something replaced it). Its thread class is private: where it is
    renamed, the report is printed, nothing else changes."""
    if getattr(threading.excepthook, "leaves_out_writer_threads", False):
        return
    writer_thread = getattr(event_file_writer, "_AsyncWriterThread", ())
    previous = threading.excepthook

    def hook(args: Any) -> None:
        if not (isinstance(args.thread, writer_thread) and issubclass(args.exc_type, OSError)):
            previous(args)

    hook.leaves_out_writer_threads = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def sample_strip(columns: list[np.ndarray]) -> np.ndarray:
    """Image sets of equal size (N, H, W, 1 or 3) side by side, one sample per row, as one
    (N·H, len·W, 3) image: e.g. grey input | truth | prediction."""
    rgb = [np.repeat(c, 3, axis=-1) if c.shape[-1] == 1 else c for c in columns]
    return np.concatenate([np.concatenate(list(images), axis=0) for images in rgb], axis=1)
