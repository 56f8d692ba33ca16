"""The optimiser: Adam at the assignment's constant learning rate, or on a cosine schedule."""

from __future__ import annotations

import optax

from jaxcolor.errors import UserError

# Learning-rate schedules by flag name: "constant" (the assignment's, so its numbers stay
# comparable) or "cosine" (decay to 0 over the run, after an optional linear warm-up).
LR_SCHEDULES = ("constant", "cosine")


def check_schedule(schedule: str) -> None:
    """A UserError naming the flag when ``schedule`` is not one of :data:`LR_SCHEDULES`."""
    if schedule not in LR_SCHEDULES:
        raise UserError(f"--lr_schedule={schedule!r} is unknown; use one of "
                        f"{', '.join(LR_SCHEDULES)}.")


def learning_rate(peak: float, schedule: str = "constant", total_steps: int = 0,
                  warmup_steps: int = 0) -> float | optax.Schedule:
    """``peak`` (constant), or with ``schedule="cosine"`` optax's warm-up cosine schedule: from
    0 up to ``peak`` over ``warmup_steps``, then down to 0 at ``total_steps``."""
    check_schedule(schedule)
    if schedule == "constant":
        return peak
    if not 0 <= warmup_steps < total_steps:
        raise UserError(f"the warm-up ({warmup_steps} steps) must be shorter than the run "
                        f"({total_steps} steps); lower --warmup_epochs.")
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup_steps, total_steps, 0.0)


def adam(peak: float, schedule: str = "constant", total_steps: int = 0, warmup_steps: int = 0
         ) -> optax.GradientTransformation:
    """Adam at the :func:`learning_rate` of these arguments."""
    return optax.adam(learning_rate(peak, schedule, total_steps, warmup_steps))
