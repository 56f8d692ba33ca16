"""q4's measured answer: learned super-resolution against interpolating the 8×8 image."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colour.metrics import image_quality
from jaxcolor.colour.palette import nearest_colour
from jaxcolor.results import markdown_table, quality_rows
from jaxcolor.tasks import TaskData
from jaxcolor.tasks.rgb import downsample4x


def superres_baselines(task_data: TaskData, batch: int = 500) -> list[dict[str, Any]]:
    """Rows for the non-learned upsamplers of the 8×8 image: nearest (the model's input) and
    bilinear, scored like the models (colour-class accuracy and image quality)."""

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
        labels = np.asarray(nearest_colour(jnp.asarray(rgb), jnp.asarray(task_data.task.palette)))
        accuracy = 100.0 * float(np.mean(labels == task_data.test_targets))
        rows.append({"model": name, "val_accuracy": accuracy, **image_quality(rgb, truth)})
        rows.append({"model": f"{name} → palette", "val_accuracy": accuracy,
                     **image_quality(task_data.task.palette[labels], truth)})
    rows.append({"model": "ground truth → palette (ceiling)", "val_accuracy": 100.0,
                 **image_quality(task_data.task.palette[task_data.test_targets], truth)})
    return rows


def superres_notes(model_rows: list[dict], baseline_rows: list[dict]) -> str:
    """q4's comparison of the learned upsamplers with nearest and bilinear interpolation, on
    colour-class accuracy and on RGB PSNR of each rendering of the models' colour
    distributions."""
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
