"""The absl flags every colourization script shares, and the validated config they give."""

from __future__ import annotations

import dataclasses
import os

from absl import flags

from jaxcolor import app
from jaxcolor.config import ExperimentConfig, setting_of, settings_where
from jaxcolor.data import SOURCES
from jaxcolor.models import CONV_IMPLEMENTATIONS, CONV_INITS, MODELS
from jaxcolor.runner.prepare import preflight
from jaxcolor.tasks import LOSSES
from jaxcolor.training import EPOCH_LOOPS, LR_SCHEDULES, parallel

FLAGS = flags.FLAGS


def define_flags(default_model: str = "cnn", default_epochs: int = 25) -> None:
    """Define the flags every experiment accepts (call once, at import of the script), listed
    by the script's ``--helpshort`` beside its own."""
    app.define_as_script_flags(lambda: _define_shared_flags(default_model, default_epochs))


# The registries that name the allowed values of a setting's flag, checked by absl while it
# parses (the model's, a string flag, by preflight, with a one-line error).
CHOICES = {"conv_init": CONV_INITS, "loss": LOSSES, "lr_schedule": LR_SCHEDULES,
           "source": SOURCES, "epoch_loop": EPOCH_LOOPS, "conv_impl": CONV_IMPLEMENTATIONS}
DEFINE_BY_TYPE = {"int": flags.DEFINE_integer, "float": flags.DEFINE_float,
                  "bool": flags.DEFINE_boolean}


def _define_shared_flags(default_model: str, default_epochs: int) -> None:
    """A flag for each :class:`ExperimentConfig` field whose setting has one, with its help
    text and default (strings without a default: None, shown as such)."""
    defaults = ExperimentConfig(experiment="", model=default_model, epochs=default_epochs)
    for field in dataclasses.fields(ExperimentConfig):
        info = setting_of(field.name)
        if not info.flag:
            continue
        default = getattr(defaults, field.name)
        if field.name == "model":
            flags.DEFINE_string("model", default, f"Model: {', '.join(MODELS)}.")
        elif info.choices or field.name in CHOICES:
            flags.DEFINE_enum(field.name, default or None,
                              list(info.choices or CHOICES[field.name]), info.help)
        elif field.type in DEFINE_BY_TYPE:
            DEFINE_BY_TYPE[field.type](field.name, default, info.help)
        else:
            flags.DEFINE_string(field.name, default or None, info.help)
    flags.DEFINE_boolean("distributed", False, "Multi-process run (TPU pod slice, GPU cluster): "
                         "call jax.distributed.initialize() first (or set "
                         f"{parallel.DISTRIBUTED_ENV}=1).")


def config_from_flags(experiment: str, **overrides) -> ExperimentConfig:
    """The validated config of the parsed flags; ``overrides`` replace flag values. Joins a
    multi-process run first (``--distributed``), before anything touches JAX's devices."""
    parallel.initialize_distributed(FLAGS.distributed)
    types = {field.name: field.type for field in dataclasses.fields(ExperimentConfig)}
    values = {name: "" if FLAGS[name].value is None and types[name] == "str"
              else FLAGS[name].value for name in settings_where(flag=True)}
    values.update(experiment=experiment,
                  output_dir=values["output_dir"] or os.path.join("results", experiment))
    values.update(overrides)
    return preflight(ExperimentConfig(**values))
