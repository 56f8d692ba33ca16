"""The CPU speed layer: native convolution kernels (C++ XLA FFI), XLA:CPU compiler options and
retained host memory. Imported only by the layers that choose kernels and compile steps
(``jaxcolor.models.layers``, ``jaxcolor.training``); GPU and TPU never use it."""
