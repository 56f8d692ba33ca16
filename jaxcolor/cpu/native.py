"""Native CPU kernels: C++ XLA FFI custom calls, compiled on first use with the C++ compiler.

XLA:CPU computes a convolution's weight gradient as an Eigen convolution that first transposes
the activations and the output gradient batch-minor, the largest cost left in jaxcolor's CPU
train steps (BENCHMARKS.md). ``native/conv.cc`` holds kernels for stride-1 convolutions that
keep the image size (any kernel size and zero padding inside it; SAME for odd kernels), for
stride-2 ones that halve it and for stride-2 transposed ones that double it (PyTorch's), that
read and write the NHWC layout directly: the convolution plus bias and the transposed
convolution plus bias (each also the input gradient of a convolution) and the weight and bias
gradients; and BatchNorm's per-channel sums in one pass. Each is threaded over images on XLA's
intra-op pool.

They need Linux on x86-64 with AVX-512F, or AVX2 and FMA (most laptops), and a C++17 compiler
(``$CXX``, else ``g++``). The same source builds one shared library per instruction set; the
best one the CPU runs is chosen at run time, and ``JAXCOLOR_NATIVE_ISA=avx2|avx512|avx512bf16``
forces one (so that the AVX2 kernels are tested and measured on an AVX-512 machine). The
``avx512bf16`` build (AVX512_BF16, with AVX512BW/VL: AMD Zen 4 and later, Intel Cooper Lake and
Sapphire Rapids and later) also has bfloat16 kernels (:func:`runs`): the models' bfloat16
convolutions multiply channel or pixel pairs with ``vdpbf16ps`` into float32 sums. Each
library is built once per source, instruction set, jaxlib version and compiler
(content-addressed, so every process and checkout can share it) into
``$JAXCOLOR_NATIVE_CACHE_DIR``, default ``~/.cache/jaxcolor/native``. Where any of that is
missing, or with ``JAXCOLOR_NATIVE=0``, :func:`available` is False and the models use XLA's
convolutions: same values within float tolerance (tested), slower.
"""

from __future__ import annotations

import concurrent.futures
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
import numpy as np

from jaxcolor.errors import UserError

DISABLE_ENV = "JAXCOLOR_NATIVE"
ISA_ENV = "JAXCOLOR_NATIVE_ISA"
CACHE_DIR_ENV = "JAXCOLOR_NATIVE_CACHE_DIR"
LOCK_NAME = "build.lock"  # in the cache folder
SOURCE = Path(__file__).with_name("native") / "conv.cc"
# Instruction set → the /proc/cpuinfo flags it needs and its compiler flags, best first.
# Portable code per instruction set (not -march=native): a cache shared by machines stays valid.
ISAS = {"avx512bf16": (("avx512f", "fma", "avx512_bf16", "avx512bw", "avx512vl"),
                       ("-mavx512f", "-mfma", "-mavx512bf16", "-mavx512bw", "-mavx512vl")),
        "avx512": (("avx512f", "fma"), ("-mavx512f", "-mfma")),
        "avx2": (("avx2", "fma"), ("-mavx2", "-mfma"))}
BFLOAT16_ISAS = ("avx512bf16",)  # whose kernels also take bfloat16 maps
FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wextra")
# Under ``jax.vmap`` a kernel runs once per mapped element (its maps are already batches of
# images: a model vmapped over, e.g., ensembles or per-example gradients).
VMAP = "sequential"
# FFI target name (suffixed with the instruction set) → handler symbol in the library.
TARGETS = {"jaxcolor_conv": "JaxcolorConv", "jaxcolor_conv_transpose": "JaxcolorConvTranspose",
           "jaxcolor_conv_weight_grad": "JaxcolorConvWeightGrad",
           "jaxcolor_channel_moments": "JaxcolorChannelMoments"}
BFLOAT16_TARGETS = {f"{target}_bf16": f"{symbol}Bf16" for target, symbol in TARGETS.items()}


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def cpu_supports(isa: str) -> bool:
    """Whether this CPU runs the ``isa`` kernels (Linux x86-64 only)."""
    return (platform.system() == "Linux" and platform.machine() == "x86_64"
            and set(ISAS[isa][0]) <= _cpu_flags())


def isa() -> str | None:
    """The instruction set of the kernels in use: ``$JAXCOLOR_NATIVE_ISA`` if set, else the best
    one this CPU runs; None when there is none."""
    forced = os.environ.get(ISA_ENV)
    if forced:
        if forced not in ISAS:
            raise UserError(f"{ISA_ENV}={forced!r}: expected one of {', '.join(ISAS)}.")
        return forced
    return next((name for name in ISAS if cpu_supports(name)), None)


def compile_command(compiler: str, isa: str) -> list[str]:
    """The compiler's command line for the ``isa`` kernels (``-o LIBRARY`` to be added); XLA's
    FFI headers are a system library's (their own warnings are not the kernels')."""
    return [compiler, *FLAGS, *ISAS[isa][1], "-isystem", jax.ffi.include_dir(), str(SOURCE)]


def _build(compiler: str, isa: str) -> Path:
    """Compile the kernels for ``isa`` (once per source, jaxlib and compiler); return the
    library."""
    flags = (*FLAGS, *ISAS[isa][1])
    command = compile_command(compiler, isa)
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), jaxlib.__version__, version,
                                    *flags]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "jaxcolor" / "native")
    library = cache / f"native-conv-{isa}-{key}.so"
    if library.exists():
        return library
    cache.mkdir(parents=True, exist_ok=True)
    # One build at a time per cache: processes started together (test workers, a sweep's runs)
    # wait for the first one's library instead of compiling it again each.
    import fcntl  # POSIX; the kernels build on Linux only

    with open(cache / LOCK_NAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if library.exists():
            return library
        with tempfile.TemporaryDirectory(dir=cache) as scratch:  # atomic: never half a library
            built = Path(scratch) / library.name
            subprocess.run([*command, "-o", str(built)], check=True, capture_output=True,
                           text=True)
            os.replace(built, library)
    return library


_builds: dict[str, concurrent.futures.Future[Path]] = {}  # started by build_in_background


def build_in_background() -> None:
    """Start compiling the kernels :func:`available` will load, on a background thread, so that
    a cold start compiles them while it loads images instead of at the first traced
    convolution. Does nothing where they are switched off, unsupported or already started."""
    chosen = None if os.environ.get(DISABLE_ENV, "1") == "0" else isa()
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if chosen is None or compiler is None or not cpu_supports(chosen) or chosen in _builds:
        return
    pool = concurrent.futures.ThreadPoolExecutor(1)
    _builds[chosen] = pool.submit(_build, compiler, chosen)
    pool.shutdown(wait=False)  # its thread ends with the build


def available() -> bool:
    """Whether the kernels of :func:`isa` are built and registered with XLA."""
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return False
    chosen = isa()
    return chosen is not None and _load(chosen)


@functools.cache
def _load(isa: str) -> bool:
    """Build (or find) and register the ``isa`` kernels, once per process and instruction set."""
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None:
        return False
    if not cpu_supports(isa):
        warnings.warn(f"jaxcolor: this CPU lacks {isa.upper()}; using XLA's convolutions.",
                      stacklevel=3)
        return False
    try:
        library = ctypes.CDLL(str(_builds[isa].result() if isa in _builds
                                  else _build(compiler, isa)))
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or err
        warnings.warn(f"jaxcolor: native CPU kernels not built ({detail}); using XLA's "
                      f"convolutions.", stacklevel=3)
        return False
    targets = {**TARGETS, **(BFLOAT16_TARGETS if isa in BFLOAT16_ISAS else {})}
    for target, symbol in targets.items():
        jax.ffi.register_ffi_target(f"{target}_{isa}",
                                    jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")
    return True


def runs(dtype: jnp.dtype) -> bool:
    """Whether the kernels in use take maps of ``dtype``: float32 wherever they are
    :func:`available`, bfloat16 with AVX512_BF16 (``vdpbf16ps``)."""
    if dtype == jnp.bfloat16:
        return available() and isa() in BFLOAT16_ISAS
    return dtype == jnp.float32 and available()


def _target(name: str, dtype: jnp.dtype) -> str:
    """The FFI target ``name`` of the kernels in use for maps of ``dtype``."""
    if not runs(dtype):
        raise RuntimeError(f"jaxcolor's native CPU kernels for {jnp.dtype(dtype).name} are not "
                           "available on this machine (see jaxcolor.cpu.native); use "
                           "jaxcolor.models.layers.conv2d")
    return f"{name}{'_bf16' if dtype == jnp.bfloat16 else ''}_{isa()}"


def _packed(kernel: jax.Array) -> jax.Array:
    """A bfloat16 HWIO kernel as the bfloat16 kernels read it, (kh, kw, ⌈ci/2⌉, co, 2): input
    channels in pairs (a zero channel added to an odd count), one pair per output channel."""
    kh, kw, ci, co = kernel.shape
    even = jnp.pad(kernel, ((0, 0), (0, 0), (0, ci % 2), (0, 0)))
    return even.reshape(kh, kw, (ci + 1) // 2, 2, co).transpose(0, 1, 2, 4, 3)


Padding = tuple[int, int]  # zero rows above and columns left of each image (0 ≤ · < kernel size)


def centred(size: tuple[int, int]) -> Padding:
    """SAME padding of a ``size`` kernel (for even sizes the extra row/column goes below and
    right, as XLA's SAME does)."""
    return (size[0] - 1) // 2, (size[1] - 1) // 2


def _attributes(padding: Padding) -> dict[str, np.int64]:
    return {"pad_top": np.int64(padding[0]), "pad_left": np.int64(padding[1])}


def conv_weight_grad(x: jax.Array, grad: jax.Array, size: tuple[int, int], padding: Padding,
                     stride: int = 1, sums_of_x: bool = False) -> tuple[jax.Array, jax.Array]:
    """∂/∂W and ∂/∂b of Σ grad · (conv(x, W) + b) for a ``size`` (kh, kw) convolution with
    ``padding`` and ``stride`` (1 or 2; x is ``stride`` times grad's size) of NHWC maps
    with an HWIO kernel, float32 sums (of bfloat16 maps too); needs :func:`runs`. With
    ``sums_of_x`` the second result is x's channel sums instead of grad's: with x and grad
    swapped, ∂/∂W (its channels swapped) and ∂/∂b of a transposed convolution."""
    sums = x.shape[-1] if sums_of_x else grad.shape[-1]
    shapes = (jax.ShapeDtypeStruct((*size, x.shape[-1], grad.shape[-1]), jnp.float32),
              jax.ShapeDtypeStruct((sums,), jnp.float32))
    target = _target("jaxcolor_conv_weight_grad", x.dtype)
    return tuple(jax.ffi.ffi_call(target, shapes, vmap_method=VMAP)(
        x, grad, **_attributes(padding), stride=np.int64(stride), sums_of_x=sums_of_x))


def conv(x: jax.Array, kernel: jax.Array, bias: jax.Array, padding: Padding | None = None,
         stride: int = 1) -> jax.Array:
    """conv(x, kernel) + bias: convolution of NHWC maps with an HWIO kernel of their dtype
    (float32, or bfloat16 with float32 sums), zero ``padding`` (rows above, columns left;
    default SAME) and ``stride`` 1 (the output the input's size) or 2 (half of the input's even
    size); needs :func:`runs`."""
    n, h, w, _ = x.shape
    shape = jax.ShapeDtypeStruct((n, h // stride, w // stride, kernel.shape[-1]), x.dtype)
    return jax.ffi.ffi_call(_target("jaxcolor_conv", x.dtype), shape, vmap_method=VMAP)(
        x, *_kernel_and_bias(kernel, bias), **_attributes(padding or centred(kernel.shape[:2])),
        stride=np.int64(stride))


def _kernel_and_bias(kernel: jax.Array, bias: jax.Array) -> tuple[jax.Array, jax.Array]:
    """As a forward kernel of ``kernel``'s dtype takes them (bfloat16: packed, float32 bias)."""
    if kernel.dtype == jnp.bfloat16:
        return _packed(kernel), bias.astype(jnp.float32)
    return kernel, bias


def conv_transpose(x: jax.Array, kernel: jax.Array, bias: jax.Array, padding: Padding
                   ) -> jax.Array:
    """PyTorch's stride-2 transposed convolution plus bias of NHWC maps with an HWIO kernel
    (as :func:`conv`'s): input pixel i adds x[i]·kernel[t] to output pixel 2i − padding + t of
    an output twice the input's size; needs :func:`runs`."""
    n, h, w, _ = x.shape
    shape = jax.ShapeDtypeStruct((n, 2 * h, 2 * w, kernel.shape[-1]), x.dtype)
    return jax.ffi.ffi_call(_target("jaxcolor_conv_transpose", x.dtype), shape,
                            vmap_method=VMAP)(x, *_kernel_and_bias(kernel, bias),
                                              **_attributes(padding))


def channel_moments(a: jax.Array, b: jax.Array, shift: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-channel float32 Σ a and Σ a·(b − shift) over every pixel of NHWC maps a and b of one
    shape and dtype (``shift`` per channel, float32) in one pass, bit-for-bit reproducible;
    needs :func:`runs`."""
    shape = jax.ShapeDtypeStruct((2, a.shape[-1]), jnp.float32)
    sums = jax.ffi.ffi_call(_target("jaxcolor_channel_moments", a.dtype), shape,
                            vmap_method=VMAP)(a, b, shift.astype(jnp.float32))
    return sums[0], sums[1]
