"""Imported first, this makes the interpreter behave as if TensorFlow were not installed:
``import tensorflow`` fails and ``importlib.util.find_spec("tensorflow")`` is None, as libraries
check. (A ``None`` in ``sys.modules`` would not do: tfds and etils then take TensorFlow as
loaded.)"""

import importlib.machinery
import sys


class _PathFinderWithoutTensorFlow(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            return None
        return super().find_spec(name, path, target)


if importlib.machinery.PathFinder in sys.meta_path and "tensorflow" not in sys.modules:
    sys.meta_path[sys.meta_path.index(importlib.machinery.PathFinder)] = (
        _PathFinderWithoutTensorFlow)
