"""Training: the train state, jit-compiled steps, the epoch loop, checkpoints and the device
mesh. Works on arrays and an objective; knows nothing of tasks or questions."""

from jaxcolor.training.checkpoint import CheckpointPolicy, Checkpoints, run_fingerprint, run_name
from jaxcolor.training.loop import FitResult, TrainOptions, fit
from jaxcolor.training.optimizer import LR_SCHEDULES
from jaxcolor.training.state import EpochRecord, TrainState
from jaxcolor.training.steps import EPOCH_LOOPS, compiled, compiled_once, make_predict

__all__ = ["EPOCH_LOOPS", "LR_SCHEDULES", "CheckpointPolicy", "Checkpoints", "EpochRecord",
           "FitResult", "TrainOptions", "TrainState", "compiled", "compiled_once", "fit",
           "make_predict", "run_fingerprint", "run_name"]
