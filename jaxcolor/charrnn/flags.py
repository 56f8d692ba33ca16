"""The char-RNN scripts' absl flags (their defaults come from :class:`TrainConfig`) and the
text they train on."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from absl import flags

from jaxcolor import app
from jaxcolor.charrnn.model import TrainConfig
from jaxcolor.errors import UserError

FLAGS = flags.FLAGS
DEFAULT_TEXT = os.path.join("..", "shared", "data", "tinyshakespeare", "input.txt")
DEFAULT_SNAPSHOT = os.path.join("results", "r0_char_rnn", "model.npz")
MIN_TEXT_CHARACTERS = 100  # a vocabulary and a held-out tail worth the name


def define_flags(loads_snapshot: bool = True) -> None:
    """Flags shared by the char-RNN scripts (listed by each one's ``--helpshort``);
    ``--checkpoint`` for those that load a trained snapshot."""
    app.define_as_script_flags(lambda: _define_shared_flags(loads_snapshot))


def _define_shared_flags(loads_snapshot: bool) -> None:
    flags.DEFINE_string("text", os.environ.get("JAXCOLOR_TEXT", DEFAULT_TEXT),
                        "Training text file (default: $JAXCOLOR_TEXT or tiny Shakespeare).")
    if loads_snapshot:
        flags.DEFINE_string("checkpoint", DEFAULT_SNAPSHOT, "Char-RNN snapshot (.npz) to load.")
    flags.DEFINE_integer("seed", TrainConfig.seed, "PRNG seed.")
    flags.DEFINE_string("output_dir", None, "Where results go (default: results/<script>).")


def define_training_flags() -> None:
    """The training flags of r0 (the reference's hyperparameters by default), listed by its
    ``--helpshort``."""
    app.define_as_script_flags(_define_training_flags)


def _define_training_flags() -> None:
    defaults = TrainConfig()
    flags.DEFINE_integer("hidden", defaults.hidden, "Hidden units.")
    flags.DEFINE_integer("seq_length", defaults.seq_length, "Truncated-BPTT chunk length.")
    flags.DEFINE_integer("batch_size", defaults.batch_size,
                         "Independent streams per update (1 = the reference).")
    flags.DEFINE_enum("optimizer", defaults.optimizer, ["adagrad", "adam"], "Optimizer.")
    flags.DEFINE_float("learning_rate", defaults.learning_rate, "Learning rate.")
    flags.DEFINE_integer("steps", defaults.steps,
                         "Optimizer updates (rounded up to whole --log_every calls).")
    flags.DEFINE_float("max_seconds", defaults.max_seconds,
                       "Stop after this many seconds (0 = no limit).")
    flags.DEFINE_integer("log_every", 500, "Updates between progress lines, samples, snapshots.")


def train_config_from_flags() -> TrainConfig:
    """The :class:`TrainConfig` of the parsed training flags (``--log_every`` updates per
    compiled call)."""
    names = ("hidden", "seq_length", "batch_size", "optimizer", "learning_rate", "steps",
             "max_seconds", "seed")
    return dataclasses.replace(TrainConfig(), chunks_per_call=FLAGS.log_every,
                               **{name: FLAGS[name].value for name in names})


def read_text(path: str) -> str:
    """The text of a training file, or a UserError naming the --text flag."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"--text={path} cannot be read: {err}.") from err
    if len(text) < MIN_TEXT_CHARACTERS:
        raise UserError(f"--text={path} holds only {len(text)} characters; the char-RNN needs "
                        f"at least {MIN_TEXT_CHARACTERS}.")
    return text
