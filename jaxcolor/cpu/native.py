"""Native CPU kernels: C++ XLA FFI custom calls, compiled on first use with the C++ compiler.

XLA:CPU computes a convolution's weight gradient as an Eigen convolution that first transposes
the activations and the output gradient batch-minor, the largest cost left in jaxcolor's CPU
train steps (BENCHMARKS.md). ``native/conv.cc`` holds AVX-512 kernels for stride-1 SAME
convolutions that read and write the NHWC layout directly: the convolution plus bias (also used
for the input gradient) and the weight and bias gradients, each threaded over images on XLA's
intra-op pool.

They need Linux on x86-64 with AVX-512F and a C++17 compiler (``$CXX``, else ``g++``). The
shared library is built once per source, jaxlib version and compiler (content-addressed, so
every process and checkout can share it) into ``$JAXCOLOR_NATIVE_CACHE_DIR``, default
``~/.cache/jaxcolor/native``. Where any of that is missing, or with ``JAXCOLOR_NATIVE=0``,
:func:`available` is False and the models use XLA's convolutions: same values within float
tolerance (tested), slower.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import jaxlib

DISABLE_ENV = "JAXCOLOR_NATIVE"
CACHE_DIR_ENV = "JAXCOLOR_NATIVE_CACHE_DIR"
SOURCE = Path(__file__).with_name("native") / "conv.cc"
# FFI target name → handler symbol in the library.
TARGETS = {"jaxcolor_conv": "JaxcolorConv", "jaxcolor_conv_weight_grad": "JaxcolorConvWeightGrad"}
# Portable AVX-512F code (not -march=native): a cache shared by several machines stays valid.
FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-mavx512f", "-mfma", "-w")


def _cpu_has_avx512() -> bool:
    try:
        return " avx512f " in f" {Path('/proc/cpuinfo').read_text()} ".replace("\n", " ")
    except OSError:
        return False


def _build(compiler: str) -> Path:
    """Compile the kernels (once per source, jaxlib and compiler) and return the library."""
    include = jax.ffi.include_dir()
    command = [compiler, *FLAGS, f"-I{include}", str(SOURCE)]
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), jaxlib.__version__, version,
                                    *FLAGS]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "jaxcolor" / "native")
    library = cache / f"native-conv-{key}.so"
    if library.exists():
        return library
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:  # atomic for concurrent builds
        built = Path(scratch) / library.name
        subprocess.run([*command, "-o", str(built)], check=True, capture_output=True, text=True)
        os.replace(built, library)
    return library


@functools.cache
def available() -> bool:
    """Whether the native kernels are built and registered with XLA (once per process)."""
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return False
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if platform.system() != "Linux" or platform.machine() != "x86_64" or not _cpu_has_avx512() \
            or compiler is None:
        return False
    try:
        library = ctypes.cdll.LoadLibrary(str(_build(compiler)))
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or err
        warnings.warn(f"jaxcolor: native CPU kernels not built ({detail}); using XLA's "
                      f"convolutions.", stacklevel=2)
        return False
    for target, symbol in TARGETS.items():
        jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)),
                                    platform="cpu")
    return True


def _require() -> None:
    if not available():
        raise RuntimeError("jaxcolor's native CPU kernels are not available on this machine "
                           "(see jaxcolor.cpu.native); use jaxcolor.models.layers.conv2d")


def conv_weight_grad(x: jax.Array, grad: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    """∂/∂W and ∂/∂b of Σ grad · (conv(x, W) + b) for a stride-1 SAME ``size``×``size``
    convolution (odd size) of NHWC float32 maps with an HWIO kernel; needs :func:`available`."""
    _require()
    shapes = (jax.ShapeDtypeStruct((size, size, x.shape[-1], grad.shape[-1]), jnp.float32),
              jax.ShapeDtypeStruct(grad.shape[-1:], jnp.float32))
    return tuple(jax.ffi.ffi_call("jaxcolor_conv_weight_grad", shapes)(x, grad))


def conv(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """conv(x, kernel) + bias: stride-1 SAME convolution of NHWC float32 maps with an odd square
    HWIO kernel; needs :func:`available`."""
    _require()
    shape = jax.ShapeDtypeStruct((*x.shape[:3], kernel.shape[-1]), jnp.float32)
    return jax.ffi.ffi_call("jaxcolor_conv", shape)(x, kernel, bias)
