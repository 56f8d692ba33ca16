"""Measurements behind the char-RNN answers: sample statistics, unit attributions, dependency
search. Each function returns plain numbers; the scripts only format them."""

from __future__ import annotations

import collections
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.charrnn import model as charrnn


def sample_statistics(text: str) -> dict[str, float]:
    """Cold samples repeat; hot samples look random. Distinct characters per character, the
    share of the most common word, and the share of characters outside letters/space/punctuation
    commonly seen in English text."""
    words = text.split()
    common = collections.Counter(words).most_common(1)
    return {"distinct_char_ratio": len(set(text)) / max(len(text), 1),
            "top_word_share": common[0][1] / len(words) if words else 0.0,
            "top_word": common[0][0] if common else "",
            "distinct_words": len(set(words)) / max(len(words), 1)}


def hidden_after(params: charrnn.Params, char: int, h_prev: jax.Array) -> jax.Array:
    """The hidden state after reading one character from state ``h_prev`` (H,)."""
    h, _ = charrnn.step(params, h_prev[None], jnp.asarray([char]))
    return h[0]


def typical_state(params: charrnn.Params, data: np.ndarray, length: int = 20_000) -> jax.Array:
    """Mean hidden state over a stretch of text: a 'typical' previous state."""
    def body(h, char):
        h, _ = charrnn.step(params, h, char)
        return h, h[0]

    h0 = jnp.zeros((1, params["Whh"].shape[0]))
    _, states = jax.lax.scan(body, h0, jnp.asarray(data[:length])[:, None])
    return jnp.mean(states, axis=0)


def unit_attribution(params: charrnn.Params, vocab: charrnn.Vocabulary, h: jax.Array,
                     top_units: int = 3, top_chars: int = 5,
                     towards: str | None = None) -> dict[str, Any]:
    """The most active hidden units of state ``h`` — or, with ``towards``, the units that add
    most to that character's score (activation × output weight) — and for each the characters
    its output weights (a column of Why) push up most; plus the model's top predictions."""
    h = np.asarray(h)
    why = np.asarray(params["Why"])
    logits = why @ h + np.asarray(params["by"])[:, 0]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    units = []
    if towards is None:
        ranking = np.argsort(-np.abs(h))
    else:
        ranking = np.argsort(-(why[vocab.chars.index(towards)] * h))
    for unit in ranking[:top_units]:
        weights = why[:, unit]
        order = np.argsort(-weights * np.sign(h[unit]))[:top_chars]
        units.append({"unit": int(unit), "activation": float(h[unit]),
                      "favours": [(vocab.chars[i], float(weights[i])) for i in order],
                      "contribution": [(vocab.chars[i], float(weights[i] * h[unit]))
                                       for i in order]})
    best = np.argsort(-probs)[:top_chars]
    return {"units": units, "predictions": [(vocab.chars[i], float(probs[i])) for i in best]}


def find_dependencies(params: charrnn.Params, vocab: charrnn.Vocabulary, data: np.ndarray,
                      context: int = 3, min_count: int = 20, exclude_next: str = "",
                      top: int = 10) -> list[dict[str, Any]]:
    """Search the text for contexts after which the model confidently predicts one character.

    Runs the RNN over ``data``; groups positions by their previous ``context`` characters; keeps
    contexts seen ≥ ``min_count`` times whose predicted next character is the same at least 90%
    of the time, ranked by mean probability of that character. ``exclude_next`` drops
    dependencies on given characters (e.g. the ':' → newline already explained)."""
    h0 = jnp.zeros((1, params["Whh"].shape[0]))
    _, logits = charrnn.forward(params, h0, jnp.asarray(data)[None])
    probs = np.asarray(jax.nn.softmax(logits[0], axis=-1))
    predicted = probs.argmax(axis=-1)
    groups: dict[str, list[int]] = collections.defaultdict(list)
    text = vocab.decode(data)
    for position in range(context - 1, len(data) - 1):
        groups[text[position - context + 1: position + 1]].append(position)
    found = []
    for key, positions in groups.items():
        if len(positions) < min_count:
            continue
        votes = collections.Counter(predicted[positions].tolist()).most_common(1)[0]
        char = vocab.chars[votes[0]]
        if votes[1] < 0.9 * len(positions) or char in exclude_next:
            continue
        actual = np.mean([data[p + 1] == votes[0] for p in positions])
        found.append({"context": key, "next": char, "count": len(positions),
                      "mean_probability": float(probs[positions, votes[0]].mean()),
                      "actually_next": float(actual)})
    return sorted(found, key=lambda r: -r["mean_probability"])[:top]
