"""q8's measured answers (the assignment's newer edition): its three nets beside the older
edition's, the stride-2 layers' padding for other kernel sizes, batch size against validation
loss, and a training recipe over seeds."""

from __future__ import annotations

import statistics
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcolor.models import ModelSpec, build_model
from jaxcolor.models.layers import stride2_padding
from jaxcolor.results import markdown_table, mean_sd

RUN_COLUMNS = [("model", "model"), ("batch_size", "batch"), ("epochs", "epochs"),
               ("train_loss", "train loss"), ("val_loss", "val loss"),
               ("val_accuracy", "final val acc %"), ("best_val_accuracy", "best val acc %"),
               ("best_epoch", "best epoch"), ("train_images_per_sec", "img/s")]
# The recipe's ingredients, each adding to the one before: name → its training settings
# ("constant": the assignment's). A 3× peak needs the warm-up epoch, so they come together.
_ASSIGNMENT = {"learning_rate": 1e-3, "lr_schedule": "constant", "warmup_epochs": 0,
               "hflip": False}
_COSINE = {**_ASSIGNMENT, "lr_schedule": "cosine"}
_PEAK = {**_COSINE, "learning_rate": 3e-3, "warmup_epochs": 1}
INGREDIENTS = {"constant": _ASSIGNMENT, "cosine": _COSINE, "cosine_peak3x_warmup": _PEAK,
               "cosine_peak3x_warmup_hflip": {**_PEAK, "hflip": True}}


def comparison_notes(rows: list[dict[str, Any]], earlier: list[dict[str, Any]],
                     sources: list[str]) -> str:
    """The three nets (at the first batch size) beside the older edition's q2/q3 runs, and why
    learned resampling beats fixed pooling/upsampling, from these numbers."""
    by_model = {row["model"]: row for row in rows if row["batch_size"] == rows[0]["batch_size"]}
    lines = ["## The newer edition's nets beside the older edition's (measured)", "",
             markdown_table(list(by_model.values()) + earlier, RUN_COLUMNS), ""]
    lines += ([f"(Older-edition rows from {', '.join(f'`{s}`' for s in sources)}.)", ""]
              if earlier else ["(No q2/q3 results found to compare with: run "
                               "`experiments/q2_classification.py` and `q3_unet.py` first.)", ""])
    pool, strided = by_model.get("pool_upsample"), by_model.get("conv_transpose")
    if pool and strided:
        gain = strided["best_val_accuracy"] - pool["best_val_accuracy"]
        sizes = [parameter_count(row) for row in (strided, pool)]
        lines += [
            f"Strided and transposed convolutions {'beat' if gain > 0 else 'do not beat'} "
            f"max-pooling and nearest upsampling here: best validation accuracy "
            f"{strided['best_val_accuracy']:.1f}% vs {pool['best_val_accuracy']:.1f}% "
            f"({gain:+.1f} points), validation loss {strided['val_loss']:.4f} vs "
            f"{pool['val_loss']:.4f}, with {sizes[0]:,} and {sizes[1]:,} parameters. Max-pooling "
            "keeps one value of four and nearest upsampling copies one into four, both fixed; "
            "a stride-2 "
            "convolution learns how to summarise each neighbourhood and a transposed one learns "
            "a different kernel for each of the four output positions, so the decoder can place "
            "colour edges between pixels instead of in 2×2 blocks.", ""]
    return "\n".join(lines)


def _strided_sizes(kernel: int, padding: int, output_padding: int) -> str:
    """Run XLA's stride-2 convolution (32×32 in) and transposed convolution (16×16 in) with
    PyTorch's ``padding``/``output_padding``; their output sizes."""
    weights = jnp.zeros((kernel, kernel, 1, 1))
    numbers = ("NHWC", "HWIO", "NHWC")
    down = lax.conv_general_dilated(jnp.zeros((1, 32, 32, 1)), weights, (2, 2),
                                    [(padding, padding)] * 2, dimension_numbers=numbers)
    low, high = kernel - 1 - padding, kernel - 1 - padding + output_padding
    up = lax.conv_general_dilated(jnp.zeros((1, 16, 16, 1)), weights, (1, 1), [(low, high)] * 2,
                                  lhs_dilation=(2, 2), dimension_numbers=numbers)
    return f"32 → {down.shape[1]}, 16 → {up.shape[1]}"


def parameter_count(row: dict[str, Any]) -> int:
    """The number of parameters of a colourization row's model (grey input, one output per
    colour)."""
    model = build_model(ModelSpec(row["model"], num_filters=row["num_filters"],
                                  kernel=row["kernel"], num_outputs=row.get("num_colours", 24)))
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes["params"]))


def padding_checks(kernels: tuple[int, ...] = (3, 4, 5)) -> list[dict[str, Any]]:
    """Per kernel size: the (padding, output_padding) of :func:`stride2_padding`, the sizes the
    layers give with it and with the kernel-3 habit (padding k//2, output_padding 1), and the
    block sizes of a ConvTransposeNet built with it and run on a 32×32 batch."""
    checks = []
    for kernel in kernels:
        model = build_model(ModelSpec("conv_transpose", num_filters=8, kernel=kernel,
                                      num_outputs=4))
        x = jnp.zeros((2, 32, 32, 1))

        def run(x, model=model):  # one compiled program per kernel, not op by op
            return model.apply(model.init(jax.random.key(0), x), x, mutable=["intermediates"])

        out, state = jax.jit(run)(x)
        shapes = [value["activations"][0].shape[1:3]
                  for value in state["intermediates"].values()] + [out.shape[1:3]]
        padding, output_padding = stride2_padding(kernel)
        checks.append({"kernel": kernel, "padding": padding, "output_padding": output_padding,
                       "layers": _strided_sizes(kernel, padding, output_padding),
                       "habit": _strided_sizes(kernel, kernel // 2, 1),
                       "sizes": " → ".join(f"{h}×{w}" for h, w in [(32, 32), *shapes])})
    return checks


def padding_notes(checks: list[dict[str, Any]]) -> str:
    return "\n".join([
        "## Padding and output_padding for other kernel sizes (computed, then run)", "",
        "A stride-2 convolution's output is ⌊(H + 2P − k)/2⌋ + 1 and a stride-2 transposed "
        "convolution's (H − 1)·2 − 2P + k + output_padding; halving and doubling even sizes "
        "exactly takes P = ⌊(k − 1)/2⌋ and output_padding = k mod 2. Run with XLA's strided "
        "convolutions (a 32×32 map down, a 16×16 map up), beside kernel 3's padding k//2 and "
        "output_padding 1 applied unchanged, and a ConvTransposeNet built with each kernel and "
        "run on a 32×32 batch (sizes after each block and the final convolution):", "",
        markdown_table(checks, [("kernel", "kernel"), ("padding", "padding"),
                                ("output_padding", "output_padding"),
                                ("layers", "down, up sizes"),
                                ("habit", "with padding k//2, output_padding 1"),
                                ("sizes", "ConvTransposeNet")]), ""])


def batch_size_notes(rows: list[dict[str, Any]]) -> str:
    """Validation loss by batch size (one model), with what it cost."""
    if len({row["batch_size"] for row in rows}) < 2:
        return ""
    rows = sorted(rows, key=lambda row: row["batch_size"])
    best_loss = min(min(r["val_loss"] for r in row["history"]) for row in rows)
    lines = [f"## Batch size against validation loss ({rows[0]['model']}, measured)", "",
             markdown_table([{**row, "best_val_loss": min(r["val_loss"] for r in row["history"])}
                             for row in rows],
                            [("batch_size", "batch"), ("val_loss", "final val loss"),
                             ("best_val_loss", "best val loss"),
                             ("val_accuracy", "final val acc %"),
                             ("train_images_per_sec", "img/s"), ("wall_seconds", "seconds")]), ""]
    best = next(row for row in rows if min(r["val_loss"] for r in row["history"]) == best_loss)
    lines += [f"The lowest validation loss came with batch {best['batch_size']}. At the same "
              "learning rate and number of epochs a smaller batch takes more (noisier) steps: "
              "more updates help until the gradient noise stops them settling, and a larger "
              "batch processes images faster per second but learns less per epoch.", ""]
    return "\n".join(lines)


def ingredient(row: dict[str, Any]) -> str | None:
    """The recipe ingredient a results row ran with (None: not one of them)."""
    settings = {name: row.get(name, default) for name, default in _ASSIGNMENT.items()}
    return next((name for name, wanted in INGREDIENTS.items() if settings == wanted), None)


def recipe_notes(rows: list[dict[str, Any]]) -> str:
    """Each ingredient over its seeds: mean ± sd of final and best validation accuracy and final
    validation loss, and the change in mean final accuracy against the constant rate."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        name = ingredient(row)
        if name is not None:
            groups.setdefault(name, []).append(row)
    if not groups:
        return ""
    baseline = (statistics.mean(r["val_accuracy"] for r in groups["constant"])
                if "constant" in groups else None)
    table = []
    for name, runs in groups.items():
        final = [r["val_accuracy"] for r in runs]
        table.append({
            "ingredient": name, "seeds": ", ".join(str(r["seed"]) for r in runs),
            "final": mean_sd(final),
            "best": mean_sd([r["best_val_accuracy"] for r in runs]),
            "loss": mean_sd([r["val_loss"] for r in runs], 4),
            "mean": statistics.mean(final),
            "sd": statistics.stdev(final) if len(final) > 1 else None,
            "delta": (f"{statistics.mean(final) - baseline:+.2f}" if baseline is not None
                      else None)})
    first = rows[0]
    best = max(table, key=lambda row: row["mean"])
    spread = ([f"Over the seeds the final accuracy's standard deviation is "
               f"{table[0]['sd']:.2f} points for `{table[0]['ingredient']}` and "
               f"{best['sd']:.2f} for `{best['ingredient']}`."]
              if table[0]["sd"] is not None and best["sd"] is not None else [])
    return "\n".join([
        f"## The training recipe, ingredient by ingredient ({first['model']}, batch "
        f"{first['batch_size']}, {first['epochs']} epochs, measured)", "",
        markdown_table(table, [("ingredient", "ingredient"), ("seeds", "seeds"),
                               ("final", "final val acc % (mean ± sd)"),
                               ("best", "best val acc %"), ("loss", "final val loss"),
                               ("delta", "Δ final vs constant (points)")]), "",
        f"Best mean final accuracy: `{best['ingredient']}`, {best['mean']:.2f}%.", *spread, "",
        "Ingredients, each added to the one above: `cosine` decays Adam's learning rate "
        "(1e-3) to 0 over the run; `cosine_peak3x_warmup` starts from 0, rises to 3e-3 over the "
        "first epoch and then decays; `…_hflip` also mirrors training images left–right at "
        "random. Cosine decay ends the run at a learning rate of 0, so the final epoch is a "
        "settled one rather than one noisy step of a constant-rate walk; the schedule depends "
        "on the run's length, so a scheduled run's earlier epochs are not a shorter run's.",
        ""])
