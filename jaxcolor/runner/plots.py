"""Figures: training curves and image grids, written as PNG (matplotlib's object API: the
library never sets the global backend, so notebooks keep their inline plots)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def training_curves(runs: Sequence[tuple[str, Sequence[dict]]], path: Path) -> None:
    """Train (solid) and validation (dashed) loss per epoch; validation accuracy when present.
    Each epoch is a marker on integer epoch ticks, so one- and two-epoch runs show too."""
    has_accuracy = any(r.get("val_accuracy") is not None for _, history in runs for r in history)
    fig = Figure(figsize=(11 if has_accuracy else 6, 4))
    axes = fig.subplots(1, 2 if has_accuracy else 1, squeeze=False)
    for index, (label, history) in enumerate(runs):
        colour = f"C{index}"
        epochs = [r["epoch"] for r in history]
        axes[0, 0].plot(epochs, [r["train_loss"] for r in history], "o-", color=colour,
                        markersize=3, label=f"{label} train")
        axes[0, 0].plot(epochs, [r["val_loss"] for r in history], "s--", color=colour,
                        markersize=3, label=f"{label} val")
        if has_accuracy:
            axes[0, 1].plot(epochs, [r["val_accuracy"] for r in history], "o-", color=colour,
                            markersize=3, label=label)
    last_epoch = max((r["epoch"] for _, history in runs for r in history), default=1)
    for axis in axes.flat:
        axis.set_xlim(0.5, last_epoch + 0.5)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="Training curve")
    axes[0, 0].legend(fontsize=8)
    if has_accuracy:
        axes[0, 1].set(xlabel="epoch", ylabel="validation pixel accuracy (%)",
                       title="Validation accuracy")
        axes[0, 1].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def image_grid(columns: Sequence[tuple[str, np.ndarray]], path: Path, title: str = "") -> None:
    """One row per sample, one titled column per image set (float [0, 1], NHWC, C = 1 or 3).
    Each column is one image (its samples stacked with white gaps), so the figure has one axes
    per column, not per image, and draws several times faster (BENCHMARKS.md, "After training:
    quality metrics and gradient norms")."""
    rows = len(columns[0][1])
    fig = Figure(figsize=(1.6 * len(columns), 1.6 * rows))
    for axis, (name, images) in zip(fig.subplots(1, len(columns), squeeze=False)[0], columns,
                                    strict=True):
        strip = _stacked(np.clip(images, 0.0, 1.0))
        if strip.shape[-1] == 1:  # NaN gaps: drawn in the figure's white
            axis.imshow(strip[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            axis.imshow(strip, interpolation="nearest")
        axis.set_axis_off()
        axis.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _stacked(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) → (N·H + gaps, W, C): the images one above the other, separated by gaps of
    H/16 rows, white (1) for colour images and NaN for grey ones (a colour map's blank)."""
    count, height = images.shape[:2]
    gap = max(height // 16, 1)
    strip = np.full((count * (height + gap) - gap, *images.shape[2:]),
                    np.nan if images.shape[-1] == 1 else 1.0, np.float32)
    for index, image in enumerate(images):
        strip[index * (height + gap):index * (height + gap) + height] = image
    return strip


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)


def channel_mosaic(activation: np.ndarray) -> np.ndarray:
    """(H, W, C) maps → one 2-D image of all C channels tiled in a near-square grid, each
    channel scaled to [0, 1] on its own, with 1-pixel gaps (NaN, drawn blank)."""
    height, width, channels = activation.shape
    cols = int(np.ceil(np.sqrt(channels)))
    rows = int(np.ceil(channels / cols))
    mosaic = np.full((rows * (height + 1) - 1, cols * (width + 1) - 1), np.nan, np.float32)
    for c in range(channels):
        channel = activation[..., c]
        span = channel.max() - channel.min()
        scaled = (channel - channel.min()) / span if span > 0 else np.zeros_like(channel)
        r, q = divmod(c, cols)
        mosaic[r * (height + 1):r * (height + 1) + height,
               q * (width + 1):q * (width + 1) + width] = scaled
    return mosaic


def activation_grid(image: np.ndarray, activations: dict[str, np.ndarray], path: Path,
                    title: str = "") -> None:
    """The input image, then every block's channels as a mosaic (one panel per block)."""
    fig = Figure(figsize=(3.2 * (len(activations) + 1), 3.6))
    axes = fig.subplots(1, len(activations) + 1)
    axes[0].imshow(np.clip(image[..., 0] if image.shape[-1] == 1 else image, 0, 1),
                   cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
    axes[0].set_title("input", fontsize=9)
    for axis, (name, activation) in zip(axes[1:], activations.items(), strict=True):
        axis.imshow(channel_mosaic(activation), cmap="viridis", vmin=0, vmax=1)
        axis.set_title(f"{name}: {activation.shape[2]} ch, {activation.shape[0]}×"
                       f"{activation.shape[1]}", fontsize=9)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
