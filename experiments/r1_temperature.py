"""r1: samples at several temperatures, with statistics that show "repetitive when cold,
random when hot". P(i) ∝ exp(alpha · y_i), temperature = 1 / alpha.

    python experiments/r1_temperature.py --checkpoint=results/r0_char_rnn/model.npz
"""

from pathlib import Path

import jax
from absl import flags

from jaxcolor import app, charrnn
from jaxcolor.charrnn import flags as charrnn_flags
from jaxcolor.charrnn.analysis import sample_statistics
from jaxcolor.results import (
    markdown_table,
    prepare_output_dir,
    write_results,
    write_text_atomic,
)

EXPERIMENT = "r1_temperature"  # its rows' name and default results folder

charrnn_flags.define_flags()
flags.DEFINE_string("temperatures", "0.1,0.5,1,2,10", "Temperatures to sample at.")
flags.DEFINE_integer("length", 300, "Characters per sample.")


def main(argv: list[str]) -> None:
    del argv
    f = flags.FLAGS
    params, vocab = charrnn.load_for_script(f.checkpoint)
    out = prepare_output_dir(f.output_dir or f"results/{EXPERIMENT}", EXPERIMENT)
    rows = []
    for temperature in app.parse_list("temperatures", f.temperatures, float):
        h, last = charrnn.run_prompt(params, vocab, "\n")
        chars, _ = charrnn.sample(params, h, last, jax.random.key(f.seed), f.length,
                                  alpha=1.0 / temperature)
        text = vocab.decode(chars)
        rows.append({"experiment": EXPERIMENT, "temperature": temperature,
                     **sample_statistics(text), "sample": text})
    write_results(Path(out), rows)
    table = markdown_table(rows, [("temperature", "temperature"),
                                  ("distinct_char_ratio", "distinct chars / char"),
                                  ("distinct_words", "distinct words / word"),
                                  ("top_word", "most common word"),
                                  ("top_word_share", "its share of words")])
    samples = [f"### temperature {r['temperature']:g}\n\n```\n{r['sample']}\n```\n" for r in rows]
    cold, hot = rows[0], rows[-1]
    repetitive = cold["distinct_words"] < hot["distinct_words"]
    random = hot["distinct_char_ratio"] > cold["distinct_char_ratio"]
    verdict = (
        f"Coldest ({cold['temperature']:g}): {cold['distinct_words']:.2f} distinct words per "
        f"word, '{cold['top_word']}' is {100 * cold['top_word_share']:.0f}% of words"
        + (" — sampling collapses onto the most likely continuation and repeats it. "
           if repetitive else ". ")
        + f"Hottest ({hot['temperature']:g}): {hot['distinct_char_ratio']:.3f} distinct "
        f"characters per character vs {cold['distinct_char_ratio']:.3f}"
        + (" — the distribution flattens towards uniform, so characters come out nearly at "
           "random." if random else "."))
    write_text_atomic(Path(out) / "results.md", "\n".join(
        ["# r1 — sampling temperature", "", table, "", verdict, "", *samples]))
    print(table, flush=True)


if __name__ == "__main__":
    app.run(main)
