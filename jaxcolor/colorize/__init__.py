"""Colourize photos of any size with a trained Lab model: the colorizer file (save/load) and
the ``jaxcolor colorize`` command."""
