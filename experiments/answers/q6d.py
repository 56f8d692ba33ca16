"""q6(d)'s measurements: an RGB-24 classifier trained on 32×32 images colourizing larger photos
(the networks are fully convolutional)."""

from __future__ import annotations

from pathlib import Path

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxcolor.colour import metrics
from jaxcolor.runner import plots
from jaxcolor.training import TrainState, make_predict


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
    logits = make_predict(model)(state, jnp.asarray(grey))
    return palette[np.asarray(logits[0]).argmax(axis=-1)]


def colourize_photos(model: nn.Module, state: TrainState, palette: np.ndarray,
                     photos: dict[str, np.ndarray], scales: tuple[float, ...], out: Path
                     ) -> list[dict]:
    """Colourize each photo at each scale; write before/after figures into ``out`` and return
    per-image rows (PSNR, colourfulness vs the original's)."""
    rows = []
    for name, photo in photos.items():
        for scale in scales:
            image = resize_to_multiple(photo, scale)
            truth = image.astype(np.float32) / 255.0
            result = colourize(model, state, palette, image)
            row = {"photo": name, "width": image.shape[1], "height": image.shape[0],
                   "psnr": float(metrics.psnr(result[None], truth[None])[0]),
                   "colourfulness": float(metrics.colourfulness(result[None])[0]),
                   "true_colourfulness": float(metrics.colourfulness(truth[None])[0])}
            rows.append(row)
            plots.image_grid([("original", truth[None]),
                              ("grey input", truth.mean(-1, keepdims=True)[None]),
                              ("colourized", result[None])], out / _figure_name(row),
                             title=f"{name} {row['width']}x{row['height']}")
    return rows


def _figure_name(row: dict) -> str:
    return f"large_{row['photo']}_{row['width']}x{row['height']}.png"


def large_images_section(rows: list[dict]) -> str:
    """The Markdown section of :func:`colourize_photos`' rows and figures."""
    lines = ["## Larger images", "",
             "| photo | size | PSNR dB | colourfulness | original colourfulness |",
             "|---|---|---|---|---|"]
    lines += [f"| {row['photo']} | {row['width']}x{row['height']} | {row['psnr']:.2f} | "
              f"{row['colourfulness']:.1f} | {row['true_colourfulness']:.1f} |" for row in rows]
    figures = [f"![{row['photo']} {row['width']}x{row['height']}]({_figure_name(row)})"
               for row in rows]
    return "\n".join([*lines, "", *figures, ""])
