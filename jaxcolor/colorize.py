"""Colourize images of any size with a trained fully convolutional model.

Two paths: q6(d)'s RGB-24 classifier on the grey image at a chosen scale, and the portable
*colorizer file* of a Lab model (written by q7, read by ``jaxcolor colorize``): one msgpack file
holding the model's settings, its variables and its ab bins. A Lab colorizer predicts ab from L
at a working resolution and keeps the photo's own L at full resolution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from PIL import Image

from jaxcolor import compiler, lab, tasks
from jaxcolor.errors import UserError
from jaxcolor.models import MODELS, build_model
from jaxcolor.train import TrainState, make_predict

COLORIZER_FORMAT = "jaxcolor-colorizer-1"


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


@dataclasses.dataclass(frozen=True)
class Colorizer:
    """A trained Lab model ready to colourize: settings, variables and (for bins) ab bins."""

    task: str
    model: nn.Module
    variables: dict[str, Any]
    ab_bins: np.ndarray | None
    temperature: float
    settings: dict[str, Any]
    predict: Callable[[dict[str, Any], jax.Array], jax.Array]  # jitted model.apply


def save_colorizer(path: Path, settings: dict[str, Any], state: TrainState,
                   task_data: tasks.TaskData) -> None:
    """Write a Lab model as one colorizer file. ``settings``: model, num_filters, kernel,
    conv_init, head_features, final_kernel, temperature and anything worth recording
    (category, epochs, …)."""
    if task_data.task not in tasks.LAB_TASKS:
        raise ValueError(f"only Lab models make colorizers, not {task_data.task!r}")
    payload = {"format": COLORIZER_FORMAT, "task": task_data.task,
               "num_outputs": task_data.num_outputs, "settings": dict(settings),
               "variables": jax.device_get({"params": state.params,
                                            "batch_stats": state.batch_stats}),
               "ab_bins": np.zeros((0, 2), np.float32) if task_data.ab_bins is None
               else task_data.ab_bins}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(serialization.msgpack_serialize(payload))
    partial.replace(path)


def load_colorizer(path: str | Path) -> Colorizer:
    """Read a colorizer file, or a UserError naming ``--checkpoint`` and what is wrong."""
    try:
        payload = serialization.msgpack_restore(Path(path).read_bytes())
    except OSError as err:
        raise UserError(f"--checkpoint={path} cannot be read: {err.strerror or err}. Train one "
                        f"with experiments/q7_lab.py (it writes "
                        f"results/q7_lab/colorizer.msgpack).") from err
    except Exception as err:  # msgpack raises several unrelated types for foreign files
        raise UserError(f"--checkpoint={path} is not a jaxcolor colorizer file "
                        f"({type(err).__name__}).") from err
    if not isinstance(payload, dict) or payload.get("format") != COLORIZER_FORMAT:
        raise UserError(f"--checkpoint={path} is not a jaxcolor colorizer file "
                        f"(expected format {COLORIZER_FORMAT}).")
    settings = payload["settings"]
    if settings["model"] not in MODELS or payload["task"] not in tasks.LAB_TASKS:
        raise UserError(f"--checkpoint={path}: unknown model {settings['model']!r} or task "
                        f"{payload['task']!r}; was it written by a newer jaxcolor?")
    model = build_model(settings["model"], num_filters=int(settings["num_filters"]),
                        kernel=int(settings["kernel"]), num_outputs=int(payload["num_outputs"]),
                        conv_init=settings["conv_init"],
                        head_features=int(settings.get("head_features", 0)),
                        final_kernel=int(settings.get("final_kernel", 0)))
    bins = np.asarray(payload["ab_bins"], np.float32)
    predict = jax.jit(lambda variables, x: model.apply(variables, x, train=False),
                      compiler_options=compiler.step_options())
    return Colorizer(payload["task"], model, payload["variables"],
                     bins if len(bins) else None, float(settings["temperature"]), settings,
                     predict)


def colorize_lab(colorizer: Colorizer, image: np.ndarray, working_side: int = 0,
                 temperature: float | None = None) -> np.ndarray:
    """uint8 RGB or grey (H, W[, 3]) of any size → uint8 RGB (H, W, 3).

    The model sees the image's L scaled so that its longer side is ``working_side`` (0: full
    size), edge-padded to a multiple of 4; the predicted ab is resized back to H×W (bilinear)
    and joined with the image's own full-resolution L. ``temperature`` overrides the file's
    annealed-mean temperature (bins models)."""
    rgb = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
    height, width = rgb.shape[:2]
    lightness = tasks.lab_channels(rgb[None])[0][0]  # (H, W, 1), L / 100
    scale = 1.0 if not working_side else working_side / max(height, width)
    small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
    small = np.asarray(jax.image.resize(jnp.asarray(lightness), (small_h, small_w, 1),
                                        "linear", antialias=True))
    padded = np.pad(small, ((0, -small_h % 4), (0, -small_w % 4), (0, 0)), mode="edge")
    outputs = colorizer.predict(colorizer.variables, jnp.asarray(padded[None]))
    ab = tasks.predicted_ab(colorizer.task, outputs[0, :small_h, :small_w], colorizer.ab_bins,
                            colorizer.temperature if temperature is None else temperature)
    full_ab = jax.image.resize(ab, (height, width, 2), "linear")
    result = lab.compose_rgb(100.0 * jnp.asarray(lightness), full_ab)
    return np.asarray(jnp.round(result * 255.0)).astype(np.uint8)
