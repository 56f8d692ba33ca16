"""A vanilla character-level RNN (Karpathy's min-char-rnn parameterisation) in JAX.

    h_t = tanh(Wxh x_t + Whh h_{t-1} + bh),   y_t = Why h_t + by,   p_t = softmax(y_t)

Parameters are a dict pytree with the reference snapshot's names and shapes: Wxh (H, V),
Whh (H, H), Why (V, H), bh (H, 1), by (V, 1). Inputs are character indices; ``Wxh x_t`` for a
one-hot ``x_t`` is a column lookup. The loss of a chunk is summed over time and averaged over the
batch, as the reference sums over its 25 steps, so Adagrad at lr 0.1 sees the same gradients at
batch 1. Truncated BPTT: the hidden state carries between chunks without gradient.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcolor.errors import UserError

Params = dict[str, jax.Array]
PARAM_NAMES = ("Wxh", "Whh", "Why", "bh", "by")


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """The character table: index ↔ character, in sorted order (the reference's order)."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise UserError(f"characters {''.join(unknown)!r} are not in the model's vocabulary.")
        return np.fromiter((index[c] for c in text), np.int32, len(text))

    def decode(self, indices) -> str:
        return "".join(self.chars[int(i)] for i in indices)


def init_params(key: jax.Array, vocab_size: int, hidden: int) -> Params:
    """The reference initialisation: N(0, 0.01²) weights, zero biases."""
    k1, k2, k3 = jax.random.split(key, 3)
    return {"Wxh": 0.01 * jax.random.normal(k1, (hidden, vocab_size)),
            "Whh": 0.01 * jax.random.normal(k2, (hidden, hidden)),
            "Why": 0.01 * jax.random.normal(k3, (vocab_size, hidden)),
            "bh": jnp.zeros((hidden, 1)), "by": jnp.zeros((vocab_size, 1))}


def step(params: Params, h: jax.Array, char: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One time step for a batch: h (B, H), char (B,) → new h (B, H), logits (B, V)."""
    h = jnp.tanh(params["Wxh"][:, char].T + h @ params["Whh"].T + params["bh"][:, 0])
    return h, h @ params["Why"].T + params["by"][:, 0]


def forward(params: Params, h: jax.Array, chars: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Run over (B, T) characters with ``lax.scan``; returns the last h and logits (B, T, V)."""
    h, logits = jax.lax.scan(lambda h, c: step(params, h, c), h, chars.T)
    return h, jnp.swapaxes(logits, 0, 1)


def chunk_loss(params: Params, h: jax.Array, inputs: jax.Array, targets: jax.Array
               ) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy summed over the chunk's time steps, averaged over the batch; and last h."""
    h, logits = forward(params, h, inputs)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    return jnp.mean(jnp.sum(losses, axis=1)), h


def make_optimizer(name: str, learning_rate: float, clip: float = 5.0
                   ) -> optax.GradientTransformation:
    """Element-wise gradient clipping to [-clip, clip], then Adagrad exactly as the reference
    (accumulators from 0, eps 1e-8 inside the square root) or Adam."""
    if name == "adagrad":
        inner = optax.adagrad(learning_rate, initial_accumulator_value=0.0, eps=1e-8)
    elif name == "adam":
        inner = optax.adam(learning_rate)
    else:
        raise UserError(f"--optimizer={name!r} is unknown; use adagrad or adam.")
    return optax.chain(optax.clip(clip), inner)


def stream_batches(data: np.ndarray, batch_size: int, seq_length: int) -> tuple[np.ndarray, int]:
    """Split ``data`` into ``batch_size`` contiguous streams (B, L); return them and the number of
    whole chunks of ``seq_length`` (+1 target character) each stream holds."""
    length = len(data) // batch_size
    if length < seq_length + 1:
        raise UserError(f"the text ({len(data)} characters) is too short for {batch_size} "
                        f"streams of --seq_length={seq_length}: it needs at least "
                        f"{batch_size * (seq_length + 1)} characters.")
    streams = data[: length * batch_size].reshape(batch_size, length)
    return streams, (length - 1) // seq_length


@jax.jit
def _chunk_losses(params, h, inputs, targets):
    h, logits = forward(params, h, inputs)
    return h, jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, targets))


def evaluate(params: Params, data: np.ndarray, batch_size: int = 32,
             seq_length: int = 100) -> float:
    """Mean loss per character (nats) over ``data``, reading it as streams with carried state
    (fewer, shorter streams when the text is short)."""
    seq_length = max(1, min(seq_length, len(data) // 4))
    batch_size = max(1, min(batch_size, (len(data) - 1) // (seq_length + 1)))
    streams, chunks = stream_batches(data, batch_size, seq_length)
    h = jnp.zeros((batch_size, params["Whh"].shape[0]))
    total = 0.0
    for i in range(chunks):
        window = streams[:, i * seq_length: (i + 1) * seq_length + 1]
        h, loss = _chunk_losses(params, h, window[:, :-1], window[:, 1:])
        total += float(loss)
    return total / (chunks * seq_length * batch_size)


@partial(jax.jit, static_argnames=("length",))
def sample(params: Params, h: jax.Array, first_char: jax.Array, key: jax.Array, length: int,
           alpha: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Sample ``length`` characters after ``first_char`` with P(i) ∝ exp(alpha · y_i)
    (temperature 1/alpha); h (H,) is the state before ``first_char``. Returns indices and h."""

    def body(carry, step_key):
        h, char = carry
        h, logits = step(params, h[None], char[None])
        char = jax.random.categorical(step_key, alpha * logits[0])
        return (h[0], char), char

    (h, _), chars = jax.lax.scan(body, (h, first_char), jax.random.split(key, length))
    return chars, h


def run_prompt(params: Params, vocab: Vocabulary, prompt: str) -> tuple[jax.Array, jax.Array]:
    """Feed all but the prompt's last character; return the state and that last character, ready
    for ``sample`` to continue the prompt."""
    indices = jnp.asarray(vocab.encode(prompt))
    h = jnp.zeros((1, params["Whh"].shape[0]))
    if len(prompt) > 1:
        h, _ = forward(params, h, indices[None, :-1])
    return h[0], indices[-1]


def save(path: Path, params: Params, vocab: Vocabulary, **extra: Any) -> None:
    """``.npz`` with the reference's keys plus the character table (``chars``), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **{k: np.asarray(v) for k, v in params.items()},
             chars=np.array(list(vocab.chars)), **extra)
    tmp.replace(path)


def load(path: Path) -> tuple[Params, Vocabulary]:
    """Load our snapshots or the assignment's: weights under the reference names and a character
    table as ``chars``, ``ix_to_char`` or ``char_to_ix``. Anything else is a clear error."""
    path = Path(path)
    try:
        snapshot = np.load(path)  # no pickle: only the dict tables below need it
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"cannot read snapshot {path}: {err}") from err
    missing = [k for k in PARAM_NAMES if k not in snapshot.files]
    if missing:
        raise UserError(f"{path} is not a char-RNN snapshot: missing {', '.join(missing)} "
                        f"(found {', '.join(snapshot.files)}).")
    vocab = _vocabulary_of(snapshot, path)
    params = {k: jnp.asarray(snapshot[k], jnp.float32) for k in PARAM_NAMES}
    hidden, vocab_size = params["Wxh"].shape
    expected = {"Wxh": (hidden, vocab_size), "Whh": (hidden, hidden),
                "Why": (vocab_size, hidden), "bh": (hidden, 1), "by": (vocab_size, 1)}
    wrong = [f"{k} {tuple(params[k].shape)} (expected {v})" for k, v in expected.items()
             if tuple(params[k].shape) != v]
    if wrong or len(vocab) != vocab_size:
        raise UserError(f"{path} has inconsistent shapes: {'; '.join(wrong) or ''}"
                        f"{' vocabulary ' + str(len(vocab)) if len(vocab) != vocab_size else ''}")
    return params, vocab


def _vocabulary_of(snapshot, path: Path) -> Vocabulary:
    if "chars" in snapshot.files:
        return Vocabulary("".join(snapshot["chars"].tolist()))
    for key in ("ix_to_char", "char_to_ix"):
        if key in snapshot.files:
            # The assignment's snapshot pickles this table as a dict; only it is unpickled.
            table = np.load(path, allow_pickle=True)[key].item()
            if key == "char_to_ix":
                table = {i: c for c, i in table.items()}
            return Vocabulary("".join(table[i] for i in range(len(table))))
    raise UserError(f"{path} has no character table (chars, ix_to_char or char_to_ix).")


def make_train_chunks(tx: optax.GradientTransformation, seq_length: int, chunks_per_call: int):
    """A jitted ``(params, opt_state, h, streams, first_chunk) → (params, opt_state, h, losses)``
    that makes ``chunks_per_call`` successive optimizer updates inside one compiled call (a
    ``lax.scan`` over chunks), reading each chunk from the on-device (B, L) streams."""

    @partial(jax.jit, donate_argnums=(0, 1))
    def train_chunks(params, opt_state, h, streams, first_chunk):
        def one_chunk(carry, chunk):
            params, opt_state, h = carry
            window = jax.lax.dynamic_slice_in_dim(streams, chunk * seq_length, seq_length + 1,
                                                  axis=1)
            (loss, h), grads = jax.value_and_grad(chunk_loss, has_aux=True)(
                params, h, window[:, :-1], window[:, 1:])
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, h), loss

        chunks = first_chunk + jnp.arange(chunks_per_call)
        (params, opt_state, h), losses = jax.lax.scan(one_chunk, (params, opt_state, h), chunks)
        return params, opt_state, h, losses

    return train_chunks


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    hidden: int = 250
    seq_length: int = 25
    batch_size: int = 1
    optimizer: str = "adagrad"
    learning_rate: float = 0.1
    steps: int = 100_000  # optimizer updates, rounded up to whole compiled calls
    max_seconds: float = 0.0  # stop earlier when > 0
    seed: int = 0
    chunks_per_call: int = 100
    held_out_fraction: float = 0.1


@dataclasses.dataclass
class Progress:
    step: int
    chars_seen: int
    smooth_loss: float  # per character, nats (the reference's 0.999/0.001 smoothing)
    chars_per_sec: float
    seconds: float


def fit(data: np.ndarray, vocab_size: int, cfg: TrainConfig,
        on_progress=lambda progress, params: None) -> tuple[Params, Progress]:
    """Train on encoded text with truncated BPTT. Every ``chunks_per_call`` updates (one
    compiled call) ``on_progress`` sees the progress and the current parameters (copy them to
    keep them: their buffers are donated to the next call). At the end of the streams the
    hidden state restarts from zero, as in the reference."""
    import time

    tx = make_optimizer(cfg.optimizer, cfg.learning_rate)
    params = init_params(jax.random.key(cfg.seed), vocab_size, cfg.hidden)
    opt_state = tx.init(params)
    streams, chunks = stream_batches(data, cfg.batch_size, cfg.seq_length)
    chunks_per_call = min(cfg.chunks_per_call, chunks)
    streams = jnp.asarray(streams)
    train_chunks = make_train_chunks(tx, cfg.seq_length, chunks_per_call)
    h = jnp.zeros((cfg.batch_size, cfg.hidden))
    smooth = float(np.log(vocab_size))  # the loss of a uniform guess
    start, step, position = time.perf_counter(), 0, 0
    progress = Progress(0, 0, smooth, 0.0, 0.0)
    while step < cfg.steps and not (cfg.max_seconds and progress.seconds > cfg.max_seconds):
        if position + chunks_per_call > chunks:
            position, h = 0, jnp.zeros_like(h)
        params, opt_state, h, losses = train_chunks(params, opt_state, h, streams, position)
        for loss in np.asarray(losses) / cfg.seq_length:
            smooth = 0.999 * smooth + 0.001 * float(loss)
        step, position = step + chunks_per_call, position + chunks_per_call
        seconds = time.perf_counter() - start
        chars = step * cfg.seq_length * cfg.batch_size
        progress = Progress(step, chars, smooth, chars / seconds, seconds)
        on_progress(progress, params)
    return params, progress


def load_for_script(path: str) -> tuple[Params, Vocabulary]:
    """``load`` with the fix named when the snapshot is missing."""
    if not Path(path).exists():
        raise UserError(f"--checkpoint={path} does not exist; train one with "
                        f"experiments/r0_train_char_rnn.py or pass the assignment's snapshot.")
    return load(Path(path))
