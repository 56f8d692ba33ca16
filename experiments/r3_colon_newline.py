"""r3: why ':' is followed by a newline — the hidden units that ':' drives hardest, and the
characters their output weights favour; from a zero and from a typical previous state.

    python experiments/r3_colon_newline.py --checkpoint=results/r0_char_rnn/model.npz
"""

from pathlib import Path

import jax.numpy as jnp
from absl import flags

from jaxcolor import app, charrnn
from jaxcolor.charrnn import flags as charrnn_flags
from jaxcolor.charrnn.analysis import hidden_after, typical_state, unit_attribution
from jaxcolor.errors import UserError
from jaxcolor.results import prepare_output_dir, write_results, write_text_atomic

EXPERIMENT = "r3_colon_newline"  # its rows' name and default results folder

charrnn_flags.define_flags()
flags.DEFINE_string("char", ":", "The input character to explain.")
flags.DEFINE_integer("top_units", 3, "Most active hidden units to report.")


def format_attribution(title: str, result: dict) -> list[str]:
    lines = [f"### {title}", "", "| unit | activation | output weights favour (weight) |",
             "|---|---|---|"]
    lines += [f"| {u['unit']} | {u['activation']:+.4f} | "
              + ", ".join(f"{c!r} ({w:+.3f})" for c, w in u["favours"]) + " |"
              for u in result["units"]]
    lines += ["", "Model's next-character probabilities: "
              + ", ".join(f"{c!r} {p:.3f}" for c, p in result["predictions"]), ""]
    return lines


def main(argv: list[str]) -> None:
    del argv
    f = flags.FLAGS
    params, vocab = charrnn.load_for_script(f.checkpoint)
    (char,) = vocab.encode(f.char) if len(f.char) == 1 else (None,)
    if char is None:
        raise UserError(f"--char={f.char!r} must be exactly one character.")
    out = prepare_output_dir(f.output_dir or f"results/{EXPERIMENT}", EXPERIMENT)
    text = charrnn_flags.read_text(f.text)
    states = {"zero previous state": jnp.zeros(params["Whh"].shape[0]),
              "typical previous state (mean over text)": typical_state(
                  params, vocab.encode(text[: 20_000]))}
    results = {name: unit_attribution(params, vocab, hidden_after(params, char, h), f.top_units)
               for name, h in states.items()}
    write_results(Path(out), [
        {"experiment": EXPERIMENT, "state": k, **v} for k, v in results.items()])
    lines = [f"# r3 — what follows {f.char!r}", "",
             "A unit raises a character's score by activation × weight: for a negative "
             "activation the most negative weights are the ones that push a character up, and "
             "those are listed.", ""]
    for name, result in results.items():
        lines += format_attribution(f"{f.char!r} after a {name}", result)
        pushed = {c for unit in result["units"] for c, _ in unit["favours"][:2]}
        top = [c for c, _ in result["predictions"][:2]]
        lines += [f"Top predictions {top!r}; among the two characters each top unit pushes "
                  f"hardest: {sorted(pushed & {chr(10), ' '})!r}.", ""]
    write_text_atomic(Path(out) / "results.md", "\n".join(lines))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    app.run(main)
