"""Train the char-RNN on a text file; progress lines, periodic samples and snapshots.

Defaults are the reference's (hidden 250, seq 25, Adagrad 0.1, batch 1). Faster here:
    python experiments/r0_train_char_rnn.py --optimizer=adam --learning_rate=0.002 \\
        --batch_size=32 --max_seconds=300
"""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
from absl import flags

from jaxcolor import app, charrnn
from jaxcolor.charrnn import flags as charrnn_flags
from jaxcolor.results import (
    markdown_table,
    prepare_output_dir,
    write_results,
    write_text_atomic,
)

EXPERIMENT = "r0_char_rnn"  # its rows' name and default results folder

charrnn_flags.define_flags(loads_snapshot=False)
charrnn_flags.define_training_flags()


def main(argv: list[str]) -> None:
    del argv
    f = flags.FLAGS
    text = charrnn_flags.read_text(f.text)
    vocab = charrnn.Vocabulary.from_text(text)
    data = vocab.encode(text)
    split = int(len(data) * (1 - charrnn.TrainConfig.held_out_fraction))  # last 10% held out
    cfg = charrnn_flags.train_config_from_flags()
    out = prepare_output_dir(f.output_dir or f"results/{EXPERIMENT}", EXPERIMENT)
    print(f"{len(text)} characters, vocabulary {len(vocab)}; training on {split}, "
          f"holding out {len(data) - split}; {cfg}", flush=True)

    def report(progress: charrnn.Progress, params: charrnn.Params) -> None:
        h, last = charrnn.run_prompt(params, vocab, "\n")
        sample = vocab.decode(charrnn.sample(params, h, last, jax.random.key(progress.step),
                                             120)[0])
        print(f"step {progress.step:7d}  smooth loss {progress.smooth_loss:.4f} nats/char  "
              f"{progress.chars_per_sec:8.0f} chars/s  {progress.seconds:6.0f}s  "
              f"| {sample[:80]!r}", flush=True)
        charrnn.save(Path(out) / "model.npz", jax.tree.map(jnp.copy, params), vocab)

    params, progress = charrnn.fit(data[:split], len(vocab), cfg, report)
    held_out = charrnn.evaluate(params, data[split:])
    row = {"experiment": EXPERIMENT, **dataclasses.asdict(cfg),
           "steps_done": progress.step, "chars_seen": progress.chars_seen,
           "smooth_loss": progress.smooth_loss, "held_out_loss": held_out,
           "chars_per_sec": progress.chars_per_sec, "wall_seconds": progress.seconds}
    write_results(Path(out), [row])
    write_text_atomic(Path(out) / "results.md", "\n".join([
        "# r0 — char-RNN training", "", markdown_table([row], [
            ("optimizer", "optimizer"), ("learning_rate", "lr"), ("batch_size", "batch"),
            ("hidden", "hidden"), ("seq_length", "seq"), ("steps_done", "updates"),
            ("chars_seen", "chars seen"), ("smooth_loss", "smoothed train loss"),
            ("held_out_loss", "held-out loss (last 10%)"), ("chars_per_sec", "chars/s"),
            ("wall_seconds", "wall s")]), "", "Losses are per character, in nats.", ""]))
    print(f"held-out loss {held_out:.4f} nats/char; wrote {out}/model.npz, results.md",
          flush=True)


if __name__ == "__main__":
    app.run(main)
