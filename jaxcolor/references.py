"""Reference numbers of ../shared/ASSIGNMENT.md (original PyTorch code, lossless CIFAR-10)."""

from __future__ import annotations

from typing import Any

# (experiment, model, batch size, epochs) → what the reference runs reported.
REFERENCES: dict[tuple[str, str, int, int], str] = {
    ("q1_regression", "regression_cnn", 100, 15): "train 0.0097 / val 0.0095",
    ("q1_regression", "regression_cnn", 100, 25): "train 0.0074 / val 0.0076",
    ("q1_regression", "regression_cnn", 100, 50): "train 0.0058 / val 0.0061",
    ("q2_classification", "cnn", 100, 25):
        "train 1.5496 / val 1.5649, 41%; another run 1.5479 / 1.5716, 41.7%",
    ("q3_unet", "unet", 100, 25): "train 1.2582 / val 1.3384, 48%; another run 1.2302 / 1.3032, "
                                  "50.4%",
    ("q3_unet", "unet", 50, 25): "train 1.1947 / val 1.3935, 47%",
    ("q4_super_resolution", "cnn", 100, 25): "train 1.47 / val 1.4790, 46%",
    ("q4_super_resolution", "unet", 100, 25): "train 1.45 / val 1.47, 46%",
}


def reference_for(row: dict[str, Any]) -> str:
    """The reference result matching a results.json row, or "" when the spec gives none."""
    key = (row.get("experiment"), row.get("model"), row.get("batch_size"), row.get("epochs"))
    if row.get("learning_rate") != 1e-3 or row.get("num_filters") != 32 or row.get("kernel") != 3:
        return ""
    return REFERENCES.get(key, "")
