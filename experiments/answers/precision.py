"""Mixed precision's measured answer: each model's final and best validation accuracy over
seeds in bfloat16 beside float32, and its train-step rate."""

from __future__ import annotations

import statistics
from typing import Any

from jaxcolor.results import markdown_table, mean_sd

# Within this many points of float32's mean final accuracy, bfloat16 counts as a match (the
# bar set for offering it).
MATCH_POINTS = 1.0


def precision_notes(rows: list[dict[str, Any]]) -> str:
    """Per model and precision over the seeds: mean ± sd of final and best validation
    accuracy, mean train images/s; bfloat16's difference in mean final accuracy from float32's
    and whether it lies within :data:`MATCH_POINTS`."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row.get("precision", "float32")), []).append(row)
    if not groups:
        return ""
    table, verdicts = [], []
    for (model, precision), runs in groups.items():
        final = [run["val_accuracy"] for run in runs]
        reference = groups.get((model, "float32"))
        delta = (statistics.mean(final) - statistics.mean(r["val_accuracy"] for r in reference)
                 if reference and precision != "float32" else None)
        table.append({"model": model, "precision": precision,
                      "seeds": ", ".join(str(run["seed"]) for run in runs),
                      "final": mean_sd(final),
                      "best": mean_sd([run["best_val_accuracy"] for run in runs]),
                      "delta": f"{delta:+.2f}" if delta is not None else "",
                      "rate": f"{statistics.mean(r['train_images_per_sec'] for r in runs):.0f}",
                      "implementation": runs[0].get("conv_implementation", "")})
        if delta is not None:
            within = "within" if abs(delta) <= MATCH_POINTS else "outside"
            verdicts.append(f"`{model}`: bfloat16's mean final accuracy is {delta:+.2f} points "
                            f"from float32's, {within} {MATCH_POINTS:g} point.")
    first = rows[0]
    return "\n".join([
        f"## bfloat16 against float32 (batch {first['batch_size']}, {first['epochs']} epochs, "
        f"measured)", "",
        markdown_table(table, [("model", "model"), ("precision", "precision"),
                               ("seeds", "seeds"), ("final", "final val acc % (mean ± sd)"),
                               ("best", "best val acc % (mean ± sd)"),
                               ("delta", "Δ final vs float32 (points)"),
                               ("rate", "train img/s (mean)"),
                               ("implementation", "convolutions")]), "",
        *verdicts, "",
        "bfloat16 here is mixed precision: activations and convolution inputs in bfloat16, "
        "float32 sums inside every convolution; parameters, Adam's state, BatchNorm statistics, "
        "losses and metrics in float32 (`--precision`)."])
