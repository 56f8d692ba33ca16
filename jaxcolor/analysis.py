"""Measurements that back the written answers (gradient flow, colour statistics, baselines,
activations), so that every explanation in a results.md is computed from the run."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor import compiler
from jaxcolor.objectives import Objective


def block_gradient_norms(model: nn.Module, inputs: np.ndarray, targets: np.ndarray,
                         objective: Objective, seed: int = 0) -> dict[str, float]:
    """L2 norm of the loss gradient w.r.t. each block's conv kernel, for a freshly initialised
    model on one batch (train mode). Large early-block norms mean the signal reaches them."""
    variables = jax.jit(model.init, static_argnames="train")(jax.random.key(seed), inputs[:1],
                                                            train=False)

    def loss_of(params):
        outputs, _ = model.apply({**variables, "params": params}, inputs, train=True,
                                 mutable=["batch_stats"])
        return jnp.mean(objective.loss(outputs, targets))

    grads = jax.jit(jax.grad(loss_of), compiler_options=compiler.step_options())(
        variables["params"])
    return {name: float(jnp.linalg.norm(layer["Conv_0"]["kernel"] if "Conv_0" in layer
                                        else layer["kernel"]))
            for name, layer in grads.items()}


def skip_connection_notes(unet_rows: list[dict], cnn_rows: list[dict], cnn_source: str,
                          norms: dict[str, dict[str, float]]) -> str:
    """q3's written answer, built from this run's numbers (never canned conclusions)."""
    lines = ["## Why skip connections help (measured)", ""]
    if cnn_rows:
        from jaxcolor.report import markdown_table

        best_unet = max(unet_rows, key=lambda r: r["val_accuracy"])
        best_cnn = max(cnn_rows, key=lambda r: r["val_accuracy"])
        lines += [f"U-Net runs above beside the CNN runs of `{cnn_source}`:", "",
                  markdown_table(unet_rows + cnn_rows, [
                      ("model", "model"), ("batch_size", "batch"), ("epochs", "epochs"),
                      ("train_loss", "train loss"), ("val_loss", "val loss"),
                      ("val_accuracy", "val acc %")]), "",
                  f"Best final validation accuracy: U-Net {best_unet['val_accuracy']:.2f}% vs "
                  f"CNN {best_cnn['val_accuracy']:.2f}% "
                  f"({best_unet['val_accuracy'] - best_cnn['val_accuracy']:+.2f} points); "
                  f"validation loss {best_unet['val_loss']:.4f} vs {best_cnn['val_loss']:.4f}.",
                  ""]
    else:
        lines += [f"(No CNN results at `{cnn_source}`: run `experiments/q2_classification.py` "
                  f"first to get the side-by-side comparison.)", ""]
    blocks = list(norms["cnn"])
    lines += ["Gradient norm of the loss w.r.t. each block's conv kernel at initialisation "
              "(one training batch, same data for both models):", "",
              "| model | " + " | ".join(blocks) + " |", "|---" * (len(blocks) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{norms[name][b]:.4f}" for b in blocks) + " |"
              for name in ("cnn", "unet")]
    ratio = norms["unet"]["block1"] / norms["cnn"]["block1"]
    lines += ["", f"The first block's gradient is {ratio:.2f}× the CNN's in the U-Net: "
              f"{'more' if ratio > 1 else 'no more'} signal reaches the early layers through the "
              "skip paths. The skip paths also hand the full-resolution input and the 16×16 "
              "block-1 features straight to the last layers, so edges and fine detail that the "
              "8×8 bottleneck loses are still available when each pixel's colour is chosen.", ""]
    return "\n".join(lines)


def channel_correlations(images: np.ndarray, max_pixels: int = 200_000) -> dict[str, float]:
    """Pearson correlations between R, G, B and between L, a, b over (a sample of) pixels."""
    from jaxcolor.lab import rgb_to_lab

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
    from jaxcolor.lab import rgb_to_lab

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
    from jaxcolor.metrics import delta_e

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
    ratio = final["colourfulness"] / final["true_colourfulness"]
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
        f"for the ground truth ({100 * ratio:.0f}%)"
        + (" — the brown/grey averages of the sample grids." if ratio < 0.8 else "."), ""]
    return "\n".join(lines)


def _rgb8(colour: np.ndarray) -> str:
    return "RGB(" + ", ".join(str(int(round(255 * c))) for c in colour) + ")"


def superres_baselines(task_data, batch: int = 500) -> list[dict[str, Any]]:
    """Rows for the non-learned upsamplers of the 8×8 image: nearest (the model's input) and
    bilinear, scored like the models (colour-class accuracy and image quality)."""
    from jaxcolor.colours import nearest_colour
    from jaxcolor.metrics import image_quality
    from jaxcolor.tasks import downsample4x

    small = downsample4x(task_data.test_images)
    truth = task_data.test_images.astype(np.float32) / 255.0
    upsampled = {
        "nearest (input)": task_data.test_inputs,
        "bilinear": np.concatenate([np.asarray(jax.image.resize(
            small[i:i + batch], (len(small[i:i + batch]), *truth.shape[1:]), "bilinear"))
            for i in range(0, len(small), batch)]),
    }
    rows = []
    for name, rgb in upsampled.items():
        labels = np.asarray(nearest_colour(jnp.asarray(rgb), jnp.asarray(task_data.palette)))
        accuracy = 100.0 * float(np.mean(labels == task_data.test_targets))
        rows.append({"model": name, "val_accuracy": accuracy, **image_quality(rgb, truth)})
        rows.append({"model": f"{name} → palette", "val_accuracy": accuracy,
                     **image_quality(task_data.palette[labels], truth)})
    rows.append({"model": "ground truth → palette (ceiling)", "val_accuracy": 100.0,
                 **image_quality(task_data.palette[task_data.test_targets], truth)})
    return rows


def superres_notes(model_rows: list[dict], baseline_rows: list[dict]) -> str:
    """q4's comparison of the learned upsamplers with nearest and bilinear interpolation, on
    colour-class accuracy and on RGB PSNR of each rendering of the models' colour
    distributions."""
    from jaxcolor.report import markdown_table, quality_rows

    bilinear_rows = [r for r in baseline_rows if r["model"].startswith("bilinear")]
    best_accuracy = max(r["val_accuracy"] for r in bilinear_rows)
    best_psnr = max(r["psnr"] for r in bilinear_rows)
    lines = ["## Learned super-resolution vs interpolation of the 8×8 image", "",
             markdown_table(quality_rows(model_rows) + baseline_rows, [
                 ("model", "model"), ("epochs", "epochs"), ("rendering", "rendering"),
                 ("val_accuracy", "colour-class acc %"), ("psnr", "PSNR dB"), ("ssim", "SSIM"),
                 ("ab_auc", "ab-error AuC %")]), "",
             "Interpolations are scored like the models: accuracy of the nearest palette colour of "
             "each interpolated pixel; PSNR/SSIM of the interpolated RGB itself, and (→ palette) "
             "of its nearest palette colours. A model's accuracy is that of its argmax class; its "
             "PSNR is given for each rendering of its per-pixel colour distribution (argmax "
             "colour, expected colour, annealed mean). Verdicts compare the model's best "
             "rendering with the better bilinear variant on each metric.", ""]
    for row in model_rows:
        renderings = quality_rows([row])
        best = max(renderings, key=lambda r: r["psnr"])
        verdict = ("beats bilinear on both" if row["val_accuracy"] > best_accuracy
                   and best["psnr"] > best_psnr else "does not beat bilinear on both")
        lines.append(f"- {row['model']} ({row['epochs']} epochs): {verdict} — accuracy "
                     f"{row['val_accuracy']:.2f}% vs {best_accuracy:.2f}%, PSNR "
                     f"{best['psnr']:.2f} ({best['rendering']} rendering) vs {best_psnr:.2f} dB"
                     + "".join(f"; {r['rendering']} {r['psnr']:.2f} dB"
                               for r in renderings if r is not best) + ".")
    return "\n".join(lines) + "\n"


def block_activations(model: nn.Module, variables: dict, inputs: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """Every block's output (N, h, w, C) for ``inputs`` in inference mode, via sown
    intermediates."""
    _, state = jax.jit(lambda v, x: model.apply(v, x, train=False, mutable=["intermediates"]),
                       compiler_options=compiler.step_options())(variables, inputs)
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
    from jaxcolor.report import markdown_table

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


def time_call(fn, *args, repeats: int = 20) -> float:
    """Median seconds of ``fn(*args)`` after one warm-up call (compilation excluded)."""
    import time

    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def pool_relu_orders(shape: tuple[int, ...], seed: int = 0, repeats: int = 20
                     ) -> dict[str, Any]:
    """Compare ReLU∘MaxPool with MaxPool∘ReLU on one random NHWC tensor: the largest absolute
    difference of outputs and of input gradients, and the median time of each order
    (forward and forward+backward, jit-compiled)."""
    from jaxcolor.layers import maxpool2x

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
    from jaxcolor.report import markdown_table

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
    from jaxcolor.report import markdown_table

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
