"""jaxcolor: CIFAR-10 colourization experiments in JAX/Flax."""

from jaxcolor.errors import UserError

__all__ = ["UserError"]
