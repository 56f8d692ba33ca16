"""Char-RNN training speed: jaxcolor's compiled step vs a plain NumPy loop of the same update.

The NumPy side is the reference algorithm (min-char-rnn: forward over 25 characters, BPTT,
element-wise clip to [-5, 5], Adagrad lr 0.1) written directly; the JAX side is
jaxcolor.charrnn at batch 1 with the same optimizer, and at batch 32 with Adam. Both read the
same text; characters/s are medians over repeats, after compilation. A second table trains each
JAX setting (batch 1 or 32 × Adagrad or Adam) for the same wall time and reports the held-out
loss, separating the effect of the batch from that of the optimizer.

    python benchmarks/char_rnn_throughput.py --text=../shared/data/tinyshakespeare/input.txt
"""

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from jaxcolor import charrnn


def numpy_reference_steps(data: np.ndarray, vocab_size: int, hidden: int, seq: int,
                          steps: int) -> float:
    """Seconds for ``steps`` reference updates in plain NumPy (batch 1)."""
    rng = np.random.default_rng(0)
    wxh = rng.normal(0, 0.01, (hidden, vocab_size))
    whh = rng.normal(0, 0.01, (hidden, hidden))
    why = rng.normal(0, 0.01, (vocab_size, hidden))
    bh, by = np.zeros((hidden, 1)), np.zeros((vocab_size, 1))
    params = [wxh, whh, why, bh, by]
    memory = [np.zeros_like(p) for p in params]
    h_prev = np.zeros((hidden, 1))
    start = time.perf_counter()
    for step in range(steps):
        p = (step * seq) % (len(data) - seq - 1)
        inputs, targets = data[p:p + seq], data[p + 1:p + seq + 1]
        xs, hs, ps = {}, {-1: h_prev}, {}
        for t in range(seq):
            xs[t] = np.zeros((vocab_size, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(wxh @ xs[t] + whh @ hs[t - 1] + bh)
            ys = why @ hs[t] + by
            ps[t] = np.exp(ys - ys.max()) / np.sum(np.exp(ys - ys.max()))
        grads = [np.zeros_like(q) for q in params]
        dh_next = np.zeros_like(h_prev)
        for t in reversed(range(seq)):
            dy = ps[t].copy()
            dy[targets[t]] -= 1
            grads[2] += dy @ hs[t].T
            grads[4] += dy
            dh = why.T @ dy + dh_next
            draw = (1 - hs[t] ** 2) * dh
            grads[3] += draw
            grads[0] += draw @ xs[t].T
            grads[1] += draw @ hs[t - 1].T
            dh_next = whh.T @ draw
        for param, grad, mem in zip(params, grads, memory, strict=True):
            np.clip(grad, -5, 5, out=grad)
            mem += grad * grad
            param -= 0.1 * grad / np.sqrt(mem + 1e-8)
        h_prev = hs[seq - 1]
    return time.perf_counter() - start


def jax_steps(data: np.ndarray, vocab_size: int, cfg: charrnn.TrainConfig) -> float:
    """Seconds for ``cfg.steps`` updates with jaxcolor.charrnn, timed from the end of the first
    compiled call (which includes compilation) to the end of the last."""
    stamps = []

    def stamp(progress: charrnn.Progress, params: charrnn.Params) -> None:
        jax.block_until_ready(params)
        stamps.append(time.perf_counter())

    charrnn.fit(data, vocab_size, dataclasses.replace(cfg, steps=cfg.steps + cfg.chunks_per_call),
                stamp)
    return stamps[-1] - stamps[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default="../shared/data/tinyshakespeare/input.txt")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget_seconds", type=float, default=60.0)
    args = parser.parse_args()
    text = Path(args.text).read_text(encoding="utf-8")
    vocab = charrnn.Vocabulary.from_text(text)
    data = vocab.encode(text)
    split = int(len(data) * 0.9)
    train, held_out = data[:split], data[split:]
    settings = {
        "numpy reference loop, batch 1, Adagrad": None,
        "jaxcolor, batch 1, Adagrad 0.1": charrnn.TrainConfig(
            steps=args.steps, chunks_per_call=100),
        "jaxcolor, batch 32, Adam 0.002": charrnn.TrainConfig(
            batch_size=32, optimizer="adam", learning_rate=0.002, steps=args.steps,
            chunks_per_call=100),
    }
    print(f"{'setting':40s} {'chars/s':>10s}")
    speeds = {}
    for name, cfg in settings.items():
        batch = 1 if cfg is None else cfg.batch_size
        seconds = [numpy_reference_steps(train, len(vocab), 250, 25, args.steps)
                   if cfg is None else jax_steps(train, len(vocab), cfg)
                   for _ in range(args.repeats)]
        speeds[name] = args.steps * 25 * batch / statistics.median(seconds)
        print(f"{name:40s} {speeds[name]:10.0f}", flush=True)
    names = list(speeds)
    print(f"jaxcolor batch 1 / NumPy: {speeds[names[1]] / speeds[names[0]]:.1f}x; "
          f"batch 32 / NumPy: {speeds[names[2]] / speeds[names[0]]:.1f}x")
    print(f"\nheld-out loss after {args.budget_seconds:.0f} s of training (nats/char):")
    settings["jaxcolor, batch 32, Adagrad 0.1"] = charrnn.TrainConfig(batch_size=32,
                                                                      chunks_per_call=100)
    settings["jaxcolor, batch 1, Adam 0.002"] = charrnn.TrainConfig(
        optimizer="adam", learning_rate=0.002, chunks_per_call=100)
    for name, cfg in list(settings.items())[1:]:
        params, progress = charrnn.fit(train, len(vocab), dataclasses.replace(
            cfg, steps=10**9, max_seconds=args.budget_seconds))
        print(f"{name:40s} {charrnn.evaluate(params, held_out):.4f} after {progress.step} "
              f"updates, {progress.chars_seen} characters", flush=True)
    print(f"[jax {jax.__version__}, {jax.devices()[0].platform}]")


if __name__ == "__main__":
    main()
