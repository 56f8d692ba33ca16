"""r4: find another learned dependency by searching the text (not by hand): contexts after
which the model confidently predicts one next character, then explain the strongest one with
the hidden units it drives, as in r3.

    python experiments/r4_dependency.py --checkpoint=results/r0_char_rnn/model.npz
"""

from pathlib import Path

import jax.numpy as jnp
from absl import flags

from jaxcolor import app, charrnn
from jaxcolor.charrnn import flags as charrnn_flags
from jaxcolor.charrnn.analysis import find_dependencies, unit_attribution
from jaxcolor.results import (
    markdown_table,
    prepare_output_dir,
    write_results,
    write_text_atomic,
)

EXPERIMENT = "r4_dependency"  # its rows' name and default results folder

charrnn_flags.define_flags()
flags.DEFINE_integer("context", 3, "Characters of context to group positions by.")
flags.DEFINE_integer("min_count", 20, "Minimum occurrences of a context.")
flags.DEFINE_integer("search_chars", 100_000, "Characters of the held-out text to search.")
flags.DEFINE_string("exclude_next", "\n ", "Next characters to leave out (r3 explained them).")


def explain(params: charrnn.Params, vocab: charrnn.Vocabulary, dependency: dict) -> list[str]:
    """The units that add most to the predicted character's score after the context."""
    h, _ = charrnn.forward(params, jnp.zeros((1, params["Whh"].shape[0])),
                           jnp.asarray(vocab.encode(dependency["context"]))[None])
    attribution = unit_attribution(params, vocab, h[0], towards=dependency["next"])
    dependency["attribution"] = attribution
    lines = [f"## Why {dependency['context']!r} → {dependency['next']!r}", "",
             "State after reading the context from a zero state; the units adding most to "
             f"{dependency['next']!r}'s score (activation × weight):", "",
             "| unit | activation | pushes up (weight) |", "|---|---|---|"]
    lines += [f"| {u['unit']} | {u['activation']:+.4f} | "
              + ", ".join(f"{c!r} ({w:+.3f})" for c, w in u["favours"]) + " |"
              for u in attribution["units"]]
    return lines + ["", "Predictions: " + ", ".join(f"{c!r} {p:.3f}"
                                                    for c, p in attribution["predictions"]), ""]


def main(argv: list[str]) -> None:
    del argv
    f = flags.FLAGS
    params, vocab = charrnn.load_for_script(f.checkpoint)
    text = charrnn_flags.read_text(f.text)
    held_out = vocab.encode(text[int(len(text) * 0.9):][: f.search_chars])
    out = prepare_output_dir(f.output_dir or f"results/{EXPERIMENT}", EXPERIMENT)
    found = find_dependencies(params, vocab, held_out, f.context, f.min_count, f.exclude_next)
    lines = ["# r4 — learned dependencies found by search", "",
             f"Contexts of {f.context} characters seen ≥ {f.min_count} times in "
             f"{len(held_out)} held-out characters, after which the model predicts the same "
             "next character ≥ 90% of the time, by mean probability:", ""]
    rows = [{**r, "context": repr(r["context"]), "next": repr(r["next"])} for r in found]
    lines += [markdown_table(rows, [("context", "context"), ("next", "predicted next"),
                                    ("count", "occurrences"),
                                    ("mean_probability", "mean probability"),
                                    ("actually_next", "share truly next")]), ""]
    colon = [r for r in found if r["next"] == ":"]  # e.g. names ending in IUS before ':'
    for dependency in found[:1] + [r for r in colon[:1] if r is not found[0]]:
        lines += explain(params, vocab, dependency)
    if not found:
        lines += ["No context met the thresholds; lower --min_count or train longer.", ""]
    write_results(Path(out),
                      [{"experiment": EXPERIMENT, **row} for row in found])
    write_text_atomic(Path(out) / "results.md", "\n".join(lines))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    app.run(main)
