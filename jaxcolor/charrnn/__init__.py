"""The character RNN of the companion questions: model and training (:mod:`.model`), the
measurements behind its answers (:mod:`.analysis`) and its scripts' flags (:mod:`.flags`).
Independent of the colourization code."""

from jaxcolor.charrnn.model import (
    PARAM_NAMES,
    Params,
    Progress,
    TrainConfig,
    Vocabulary,
    evaluate,
    fit,
    forward,
    init_params,
    load,
    load_for_script,
    run_prompt,
    sample,
    save,
    step,
)

__all__ = ["PARAM_NAMES", "Params", "Progress", "TrainConfig", "Vocabulary", "evaluate", "fit",
           "forward", "init_params", "load", "load_for_script", "run_prompt", "sample", "save",
           "step"]
