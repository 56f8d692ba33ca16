"""Colourize images of any size with a trained fully convolutional model."""

from __future__ import annotations

from pathlib import Path

import flax.linen as nn
import jax
import numpy as np
from PIL import Image

from jaxcolor.train import TrainState, make_predict


def resize_to_multiple(image: np.ndarray, scale: float = 1.0, multiple: int = 4) -> np.ndarray:
    """uint8 RGB (H, W, 3), scaled by ``scale`` and cropped so both sides divide ``multiple``
    (the models pool twice by 2)."""
    height, width = image.shape[:2]
    if scale != 1.0:
        size = (max(multiple, round(width * scale)), max(multiple, round(height * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
        height, width = image.shape[:2]
    return image[: height - height % multiple, : width - width % multiple]


def colourize(model: nn.Module, state: TrainState, palette: np.ndarray,
              image: np.ndarray) -> np.ndarray:
    """uint8 RGB or grey (H, W[, 3]) with sides divisible by 4 → float RGB [0, 1] (H, W, 3):
    the grey version goes through the model; each pixel takes its most likely palette colour."""
    rgb = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image
    grey = (rgb.astype(np.float32) / 255.0).mean(axis=-1, keepdims=True)[None]
    logits = make_predict(model)(state, jax.numpy.asarray(grey))
    return palette[np.asarray(logits[0]).argmax(axis=-1)]


def colourize_photos(model: nn.Module, state: TrainState, palette: np.ndarray,
                     photos: dict[str, np.ndarray], scales: tuple[float, ...], out: Path
                     ) -> tuple[list[dict], str]:
    """Colourize each photo at each scale; write before/after figures into ``out`` and return
    per-image rows (PSNR, colourfulness vs the original's) and a Markdown section."""
    from jaxcolor import metrics, plots

    rows = []
    lines = ["## Larger images", "",
             "| photo | size | PSNR dB | colourfulness | original colourfulness |",
             "|---|---|---|---|---|"]
    figures = []
    for name, photo in photos.items():
        for scale in scales:
            image = resize_to_multiple(photo, scale)
            size = f"{image.shape[1]}x{image.shape[0]}"
            truth = image.astype(np.float32) / 255.0
            result = colourize(model, state, palette, image)
            row = {"photo": name, "width": image.shape[1], "height": image.shape[0],
                   "psnr": float(metrics.psnr(result[None], truth[None])[0]),
                   "colourfulness": float(metrics.colourfulness(result[None])[0]),
                   "true_colourfulness": float(metrics.colourfulness(truth[None])[0])}
            rows.append(row)
            lines.append(f"| {name} | {size} | {row['psnr']:.2f} | {row['colourfulness']:.1f} | "
                         f"{row['true_colourfulness']:.1f} |")
            figure = f"large_{name}_{size}.png"
            plots.image_grid([("original", truth[None]),
                              ("grey input", truth.mean(-1, keepdims=True)[None]),
                              ("colourized", result[None])], out / figure,
                             title=f"{name} {size}")
            figures.append(f"![{name} {size}]({figure})")
    return rows, "\n".join([*lines, "", *figures, ""])
