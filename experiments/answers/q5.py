"""q5's measured answer: what each block's activations follow (brightness, edges)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import numpy as np

from jaxcolor.results import markdown_table
from jaxcolor.training import compiled


def block_activations(model: nn.Module, variables: dict, inputs: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """Every block's output (N, h, w, C) for ``inputs`` in inference mode, via sown
    intermediates."""
    _, state = compiled(lambda v, x: model.apply(v, x, train=False,
                                                  mutable=["intermediates"]))(variables, inputs)
    return {name: np.asarray(value["activations"][0])
            for name, value in state["intermediates"].items()}


def activation_statistics(activations: dict[str, np.ndarray], grey: np.ndarray
                          ) -> list[dict[str, Any]]:
    """Per block: how strongly its channels follow the input's brightness and its edges.

    For each channel, the |Pearson r| between its map (nearest-upsampled to the input size)
    and the input's brightness, and its Sobel edge magnitude; averaged over channels and
    images. Also the fraction of active (positive) units. ``grey``: (N, H, W)."""
    edges = np.stack([_sobel_magnitude(g) for g in grey])
    rows = []
    for name, maps in activations.items():
        factor = grey.shape[1] // maps.shape[1]
        upsampled = maps.repeat(factor, axis=1).repeat(factor, axis=2)
        r_brightness, r_edges = [], []
        for i in range(len(grey)):
            for c in range(maps.shape[-1]):
                channel = upsampled[i, ..., c].ravel()
                if channel.std() == 0:
                    continue
                r_brightness.append(abs(np.corrcoef(channel, grey[i].ravel())[0, 1]))
                r_edges.append(abs(np.corrcoef(channel, edges[i].ravel())[0, 1]))
        rows.append({"block": name, "size": f"{maps.shape[1]}×{maps.shape[2]}",
                     "channels": maps.shape[-1], "active": float(np.mean(maps > 0)),
                     "r_brightness": float(np.mean(r_brightness)) if r_brightness else 0.0,
                     "r_edges": float(np.mean(r_edges)) if r_edges else 0.0})
    return rows


def _sobel_magnitude(image: np.ndarray) -> np.ndarray:
    padded = np.pad(image, 1, mode="edge")
    gx = (padded[:-2, 2:] + 2 * padded[1:-1, 2:] + padded[2:, 2:]
          - padded[:-2, :-2] - 2 * padded[1:-1, :-2] - padded[2:, :-2])
    gy = (padded[2:, :-2] + 2 * padded[2:, 1:-1] + padded[2:, 2:]
          - padded[:-2, :-2] - 2 * padded[:-2, 1:-1] - padded[:-2, 2:])
    return np.hypot(gx, gy)


def activation_notes(stats: dict[str, list[dict[str, Any]]]) -> str:
    """q5's written answer from the measured per-block statistics."""
    lines = ["## What early and late blocks respond to (measured)", "",
             "Mean over channels and sample images of |r| between a channel's map and the "
             "input's brightness, and its edge magnitude (Sobel); `active` is the fraction of "
             "positive units after ReLU.", ""]
    for label, rows in stats.items():
        lines += [f"### {label}", "", markdown_table(rows, [
            ("block", "block"), ("size", "map"), ("channels", "channels"),
            ("active", "active"), ("r_brightness", "corr. brightness"),
            ("r_edges", "corr. edges")]), ""]
        first, last = rows[0], rows[-1]
        brightness = "more" if first["r_brightness"] > last["r_brightness"] else "less"
        edges = "more" if first["r_edges"] > last["r_edges"] else "less"
        lines += [f"block1 follows the input's brightness {brightness} than block5 "
                  f"({first['r_brightness']:.2f} vs {last['r_brightness']:.2f}) and its edges "
                  f"{edges} ({first['r_edges']:.2f} vs {last['r_edges']:.2f})."
                  + (" Early blocks re-describe the grey input locally; the last block has "
                     "moved away from raw intensity towards the colour classes it must output."
                     if brightness == "more" else ""), ""]
    return "\n".join(lines)
