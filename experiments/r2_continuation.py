"""r2: continue a prompt — run the RNN over it, then sample from its hidden state.

    python experiments/r2_continuation.py --prompt="See here these movers" --samples=5
"""

from pathlib import Path

import jax
from absl import flags

from jaxcolor import app, charrnn
from jaxcolor.charrnn import flags as charrnn_flags
from jaxcolor.errors import UserError
from jaxcolor.results import prepare_output_dir, write_results, write_text_atomic

EXPERIMENT = "r2_continuation"  # its rows' name and default results folder

charrnn_flags.define_flags()
flags.DEFINE_string("prompt", "See here these movers", "Text to continue.")
flags.DEFINE_integer("length", 200, "Characters to sample after the prompt.")
flags.DEFINE_integer("samples", 5, "Continuations to draw.")
flags.DEFINE_float("temperature", 1.0, "Sampling temperature.")


def main(argv: list[str]) -> None:
    del argv
    f = flags.FLAGS
    params, vocab = charrnn.load_for_script(f.checkpoint)
    if not f.prompt:
        raise UserError("--prompt must not be empty.")
    out = prepare_output_dir(f.output_dir or f"results/{EXPERIMENT}", EXPERIMENT)
    h, last = charrnn.run_prompt(params, vocab, f.prompt)
    rows = []
    for i, key in enumerate(jax.random.split(jax.random.key(f.seed), f.samples)):
        chars, _ = charrnn.sample(params, h, last, key, f.length, alpha=1.0 / f.temperature)
        rows.append({"experiment": EXPERIMENT, "sample": i, "prompt": f.prompt,
                     "continuation": vocab.decode(chars)})
    write_results(Path(out), rows)
    text = [f"# r2 — continuations of {f.prompt!r} (temperature {f.temperature:g})", ""]
    text += [f"### sample {r['sample']}\n\n```\n{f.prompt}{r['continuation']}\n```\n"
             for r in rows]
    write_text_atomic(Path(out) / "results.md", "\n".join(text))
    print("\n".join(text), flush=True)


if __name__ == "__main__":
    app.run(main)
