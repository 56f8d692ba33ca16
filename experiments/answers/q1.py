"""q1's measured answer: why RGB is a poor output space and MSE a poor loss for colour."""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxcolor.colour.lab import rgb_to_lab
from jaxcolor.colour.metrics import delta_e


def channel_correlations(images: np.ndarray, max_pixels: int = 200_000) -> dict[str, float]:
    """Pearson correlations between R, G, B and between L, a, b over (a sample of) pixels."""
    rgb = (images.reshape(-1, 3).astype(np.float32) / 255.0)
    rgb = rgb[np.random.default_rng(0).permutation(len(rgb))[:max_pixels]]
    lab = np.asarray(rgb_to_lab(rgb))
    rgb_corr, lab_corr = np.corrcoef(rgb.T), np.corrcoef(lab.T)
    return {"R-G": rgb_corr[0, 1], "R-B": rgb_corr[0, 2], "G-B": rgb_corr[1, 2],
            "L-a": lab_corr[0, 1], "L-b": lab_corr[0, 2], "a-b": lab_corr[1, 2]}


def conditional_mean_chroma(images: np.ndarray, bins: int = 8) -> list[dict[str, float]]:
    """Per grey-level bin: mean chroma of the pixels vs chroma of their mean colour.

    The MSE-optimal prediction for a grey level is the mean colour of the pixels that have it;
    when those pixels differ in hue, the mean is much less saturated than any of them.
    """
    rgb = images.reshape(-1, 3).astype(np.float32) / 255.0
    grey = rgb.mean(axis=1)
    chroma = np.linalg.norm(np.asarray(rgb_to_lab(rgb))[:, 1:], axis=1)
    rows = []
    for low in np.linspace(0.0, 1.0, bins, endpoint=False):
        mask = (grey >= low) & (grey < low + 1.0 / bins)
        if mask.sum() < 100:
            continue
        mean_colour = rgb[mask].mean(axis=0)
        rows.append({"grey_from": float(low), "grey_to": float(low + 1.0 / bins),
                     "pixels": int(mask.sum()), "pixel_chroma": float(chroma[mask].mean()),
                     "chroma_of_mean": float(np.linalg.norm(
                         np.asarray(rgb_to_lab(mean_colour[None]))[0, 1:]))})
    return rows


def equal_mse_pair(colour: np.ndarray, distance: float = 0.1) -> dict[str, Any]:
    """Two predictions at the same RGB distance (so equal MSE) from ``colour``: one shifted in
    brightness along (1,1,1), one in hue along (1,-1,0); returns both and their ΔE*ab."""
    brighter = np.clip(colour + distance * np.ones(3) / np.sqrt(3.0), 0, 1)
    other_hue = np.clip(colour + distance * np.array([1.0, -1.0, 0.0]) / np.sqrt(2.0), 0, 1)
    return {"truth": colour, "brighter": brighter, "other_hue": other_hue,
            "mse_brighter": float(np.mean((brighter - colour) ** 2)),
            "mse_other_hue": float(np.mean((other_hue - colour) ** 2)),
            "delta_e_brighter": delta_e(brighter, colour),
            "delta_e_other_hue": delta_e(other_hue, colour)}


def regression_notes(rows: list[dict], images: np.ndarray, palette: np.ndarray) -> str:
    """q1's written answer: why RGB is a poor output space and MSE a poor loss, with numbers.

    Every conclusion is stated only when the measured numbers support it."""
    corr = channel_correlations(images)
    chroma = conditional_mean_chroma(images)
    rgb_min = min(corr["R-G"], corr["R-B"], corr["G-B"])
    lab_max = max(abs(corr["L-a"]), abs(corr["L-b"]))
    # The most common mid-tone colour of the palette stands in for "a typical horse pixel".
    pair = equal_mse_pair(palette[len(palette) // 2].astype(np.float64))
    final = rows[-1]
    ratio = (final["colourfulness"] / final["true_colourfulness"]
             if final["true_colourfulness"] else None)  # a colourless test set has none
    desaturated = sum(r["chroma_of_mean"] < 0.8 * r["pixel_chroma"] for r in chroma)
    lines = [
        "## Why RGB is a poor output space (measured on the test pixels)", "",
        "| R–G | R–B | G–B | L–a | L–b | a–b |", "|---|---|---|---|---|---|",
        "| " + " | ".join(f"{corr[k]:+.3f}" for k in ("R-G", "R-B", "G-B", "L-a", "L-b", "a-b"))
        + " |", "",
        (f"R, G and B correlate at {rgb_min:.2f} or more: most of each channel is the "
         "brightness the network is already given, so three outputs re-predict the input and "
         "the colour is a small difference between large correlated values."
         if rgb_min > 0.8 else
         f"Here R, G and B correlate only at {rgb_min:.2f} or more, less than in natural photos."),
        (f"In Lab, lightness and colour are nearly independent (|r| ≤ {lab_max:.2f}): L is "
         "known from the input and only a, b need predicting." if lab_max < rgb_min else
         f"Lab's lightness-colour correlations (up to {lab_max:.2f}) are not lower here."), "",
        "## Why MSE on RGB is a poor loss for colour", "",
        f"Two predictions at the same RGB distance from the colour {_rgb8(pair['truth'])}: "
        f"{_rgb8(pair['brighter'])} (brighter) and {_rgb8(pair['other_hue'])} (another hue) "
        f"have equal MSE ({pair['mse_brighter']:.4f} vs {pair['mse_other_hue']:.4f}) but "
        f"ΔE*ab {pair['delta_e_brighter']:.1f} vs {pair['delta_e_other_hue']:.1f}"
        + (": MSE cannot tell a small lightness error from a visibly wrong colour."
           if pair["delta_e_other_hue"] > 1.5 * pair["delta_e_brighter"] else "."), "",
        "MSE's optimum is the mean colour of all pixels that look alike in grey. When they come "
        "in several hues, that mean is greyer than they are (chroma = √(a²+b²) in Lab; here in "
        f"{desaturated} of {len(chroma)} grey-level bins the mean colour has under 80% of the "
        "pixels' chroma):", "",
        "| grey level | pixels | mean chroma of the pixels | chroma of their mean colour |",
        "|---|---|---|---|",
        *[f"| {r['grey_from']:.3f}–{r['grey_to']:.3f} | {r['pixels']} | "
          f"{r['pixel_chroma']:.1f} | {r['chroma_of_mean']:.1f} |" for r in chroma], "",
        f"The trained model shows it: after {final['epochs']} epochs its test predictions have "
        f"colourfulness {final['colourfulness']:.1f} against {final['true_colourfulness']:.1f} "
        f"for the ground truth" + ("." if ratio is None else f" ({100 * ratio:.0f}%)"
                                   + (" — the brown/grey averages of the sample grids."
                                      if ratio < 0.8 else ".")), ""]
    return "\n".join(lines)


def _rgb8(colour: np.ndarray) -> str:
    return "RGB(" + ", ".join(str(int(round(255 * c))) for c in colour) + ")"
