"""q6's measured answers: (a) one knob at a time, (b) max-pool and ReLU commute, (c) perceptual
metrics of plain and rebalanced losses."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.layers import maxpool2x
from jaxcolor.results import markdown_table
from jaxcolor.timing import time_call


def pool_relu_orders(shape: tuple[int, ...], seed: int = 0, repeats: int = 20
                     ) -> dict[str, Any]:
    """Compare ReLU∘MaxPool with MaxPool∘ReLU on one random NHWC tensor: the largest absolute
    difference of outputs and of input gradients, and the median time of each order
    (forward and forward+backward, jit-compiled)."""
    x = jax.random.normal(jax.random.key(seed), shape)
    orders = {"relu_after_pool": lambda v: nn.relu(maxpool2x(v)),
              "pool_after_relu": lambda v: maxpool2x(nn.relu(v))}
    outputs = {name: jax.jit(f)(x) for name, f in orders.items()}
    grads = {name: jax.jit(jax.grad(lambda v, f=f: jnp.sum(f(v) ** 2)))(x)
             for name, f in orders.items()}
    row: dict[str, Any] = {
        "shape": "×".join(map(str, shape)),
        "max_abs_diff": float(jnp.max(jnp.abs(outputs["relu_after_pool"]
                                              - outputs["pool_after_relu"]))),
        "max_abs_grad_diff": float(jnp.max(jnp.abs(grads["relu_after_pool"]
                                                   - grads["pool_after_relu"])))}
    for name, f in orders.items():
        row[f"{name}_forward_ms"] = 1e3 * time_call(jax.jit(f), x, repeats=repeats)
        row[f"{name}_backward_ms"] = 1e3 * time_call(
            jax.jit(jax.grad(lambda v, f=f: jnp.sum(f(v) ** 2))), x, repeats=repeats)
    return row


def hyperparameter_notes(rows: list[dict[str, Any]]) -> str:
    """q6(a): rank the runs and say how far each knob moved validation accuracy."""
    base = rows[0]
    ranked = sorted(rows, key=lambda r: -r["val_accuracy"])
    lines = ["## Ranking by final validation accuracy", "", markdown_table(ranked, [
        ("learning_rate", "lr"), ("batch_size", "batch"), ("num_filters", "NF"),
        ("kernel", "kernel"), ("train_loss", "train loss"), ("val_loss", "val loss"),
        ("val_accuracy", "val acc %"), ("wall_seconds", "wall s")]), ""]
    for knob in ("learning_rate", "batch_size", "num_filters", "kernel"):
        varied = [r for r in rows[1:] if r[knob] != base[knob]
                  and all(r[k] == base[k] for k in ("learning_rate", "batch_size",
                                                     "num_filters", "kernel") if k != knob)]
        if varied:
            effects = ", ".join(f"{r[knob]:g}: {r['val_accuracy'] - base['val_accuracy']:+.2f}"
                                for r in varied)
            lines.append(f"- {knob} (default {base[knob]:g}) → change in val accuracy: {effects} "
                         "points.")
    return "\n".join(lines) + "\n"


def perceptual_notes(rows: list[dict[str, Any]], earlier: list[dict[str, Any]]) -> str:
    """q6(c): the same models under plain and rebalanced loss, and earlier runs, on metrics
    closer to what a person sees."""
    columns = [("experiment", "experiment"), ("model", "model"), ("loss", "loss"),
               ("epochs", "epochs"), ("val_accuracy", "pixel acc %"), ("psnr", "PSNR dB"),
               ("ssim", "SSIM"), ("colourfulness", "colourfulness"),
               ("true_colourfulness", "truth colourfulness"), ("ab_auc", "ab-error AuC %")]
    lines = ["## Perceptual metrics", "", markdown_table(rows, columns), ""]
    measured = [r for r in earlier if r.get("psnr") is not None]
    if measured:
        lines += ["Earlier experiments' runs, same metrics:", "",
                  markdown_table(measured, columns), ""]
    skipped = len(earlier) - len(measured)
    if skipped:
        lines += [f"({skipped} earlier rows predate these metrics; re-run their experiments "
                  "to fill them in.)", ""]
    by_loss = {}
    for row in rows:
        by_loss.setdefault(row["model"], {})[row.get("loss", "cross_entropy")] = row
    for model, pair in by_loss.items():
        if {"cross_entropy", "rebalanced"} <= pair.keys():
            plain, rebal = pair["cross_entropy"], pair["rebalanced"]
            truth = plain["true_colourfulness"]
            closer = abs(rebal["colourfulness"] - truth) < abs(plain["colourfulness"] - truth)
            lines.append(
                f"- {model}: rebalancing changes pixel accuracy by "
                f"{rebal['val_accuracy'] - plain['val_accuracy']:+.2f} points and colourfulness "
                f"from {plain['colourfulness']:.1f} to {rebal['colourfulness']:.1f} (truth "
                f"{truth:.1f}: {'closer' if closer else 'not closer'}); ab-error AuC "
                f"{plain['ab_auc']:.2f}% → {rebal['ab_auc']:.2f}%, PSNR {plain['psnr']:.2f} → "
                f"{rebal['psnr']:.2f} dB.")
    lines += ["", "Pixel accuracy rewards the most common colour of each region; colourfulness "
              "and the ab-error AuC show whether predictions keep the saturation and hue of "
              "the ground truth, which is what a viewer notices first.", ""]
    return "\n".join(lines)
