"""The portable *colorizer file* of a trained Lab model, and colourizing images of any size
with it (``jaxcolor colorize``): one msgpack file holding the model's settings, its variables and
its ab bins. A Lab colorizer predicts ab from L at a working resolution and keeps the photo's own
L at full resolution.
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

from jaxcolor.colour import lab
from jaxcolor.errors import UserError
from jaxcolor.models import MODELS, ModelSpec, build_model
from jaxcolor.tasks import TASKS
from jaxcolor.tasks.lab import LabTask, lab_channels
from jaxcolor.training import TrainState, compiled

COLORIZER_FORMAT = "jaxcolor-colorizer-1"


@dataclasses.dataclass(frozen=True)
class Colorizer:
    """A trained Lab model ready to colourize: its task (with ab bins), model and variables."""

    task: LabTask
    model: nn.Module
    variables: dict[str, Any]
    temperature: float
    settings: dict[str, Any]
    predict: Callable[[dict[str, Any], jax.Array], jax.Array]  # jitted model.apply

    @property
    def ab_bins(self) -> np.ndarray | None:
        return self.task.ab_bins


def save_colorizer(path: Path, spec: ModelSpec, task: LabTask, state: TrainState,
                   temperature: float, **record: Any) -> None:
    """Write a Lab model as one colorizer file, decoding at ``temperature`` by default;
    ``record``: anything worth keeping beside the settings (category, epochs, …)."""
    if not isinstance(task, LabTask):
        raise ValueError(f"only Lab models make colorizers, not {task.name!r}")
    architecture = {key: value for key, value in dataclasses.asdict(spec).items()
                    if key != "num_outputs"}
    payload = {"format": COLORIZER_FORMAT, "task": task.name, "num_outputs": spec.num_outputs,
               "settings": {**architecture, "temperature": temperature, **record},
               "variables": jax.device_get({"params": state.params,
                                            "batch_stats": state.batch_stats}),
               "ab_bins": np.zeros((0, 2), np.float32) if task.ab_bins is None else task.ab_bins}
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
    task_type = TASKS.get(payload["task"])
    if settings["model"] not in MODELS or task_type is None or not issubclass(task_type, LabTask):
        raise UserError(f"--checkpoint={path}: unknown model {settings['model']!r} or task "
                        f"{payload['task']!r}; was it written by a newer jaxcolor?")
    spec = ModelSpec(settings["model"], num_filters=int(settings["num_filters"]),
                     kernel=int(settings["kernel"]), num_outputs=int(payload["num_outputs"]),
                     conv_init=settings["conv_init"],
                     head_features=int(settings.get("head_features", 0)),
                     final_kernel=int(settings.get("final_kernel", 0)))
    model = build_model(spec)
    bins = np.asarray(payload["ab_bins"], np.float32)
    predict = compiled(lambda variables, x: model.apply(variables, x, train=False))
    return Colorizer(task_type.from_bins(bins if len(bins) else None), model,
                     payload["variables"], float(settings["temperature"]), settings, predict)


def colorize_lab(colorizer: Colorizer, image: np.ndarray, working_side: int = 0,
                 temperature: float | None = None) -> np.ndarray:
    """uint8 RGB or grey (H, W[, 3]) of any size → uint8 RGB (H, W, 3).

    The model sees the image's L scaled so that its longer side is ``working_side`` (0: full
    size), edge-padded to a multiple of 4; the predicted ab is resized back to H×W (bilinear)
    and joined with the image's own full-resolution L. ``temperature`` overrides the file's
    annealed-mean temperature (bins models)."""
    rgb = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
    height, width = rgb.shape[:2]
    lightness = lab_channels(rgb[None])[0][0]  # (H, W, 1), L / 100
    scale = 1.0 if not working_side else working_side / max(height, width)
    small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
    small = np.asarray(jax.image.resize(jnp.asarray(lightness), (small_h, small_w, 1),
                                        "linear", antialias=True))
    padded = np.pad(small, ((0, -small_h % 4), (0, -small_w % 4), (0, 0)), mode="edge")
    outputs = colorizer.predict(colorizer.variables, jnp.asarray(padded[None]))
    ab = colorizer.task.ab(outputs[0, :small_h, :small_w],
                           colorizer.temperature if temperature is None else temperature)
    full_ab = jax.image.resize(ab, (height, width, 2), "linear")
    result = lab.compose_rgb(100.0 * jnp.asarray(lightness), full_ab)
    return np.asarray(jnp.round(result * 255.0)).astype(np.uint8)
