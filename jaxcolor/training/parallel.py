"""Data parallelism over every device of every process, with JAX's multi-controller runtime.

A 2-D ``Mesh`` (hosts × devices per host) spans all devices. Batches are split over all of
them; the train state is replicated. The training set is split over hosts only — each process
holds its own share of the images, copied on each of its devices — so every batch is gathered
without moving images between hosts, and on one host the data order (hence the result) does
not depend on the device count. Steps are jit-compiled over these global arrays, so BatchNorm
statistics, losses and metrics are over the global batch (XLA inserts the all-reduces). Each
process passes only its own rows (``process_share``) and builds the global arrays with
``jax.make_array_from_process_local_data``. On one device this is plain ``jit``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import MutableMapping
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxcolor.errors import UserError

FORCED_DEVICES = re.compile(r"--xla_force_host_platform_device_count=(\d+)")
# XLA:CPU threads per forced device (see below).
THREADS_PER_FORCED_DEVICE = 2


def size_thread_pool_for_forced_devices(environ: MutableMapping[str, str] = os.environ) -> None:
    """Give XLA:CPU's thread pool two threads per device when more CPU devices are forced
    (``--xla_force_host_platform_device_count``) than the machine has cores, unless
    ``PJRT_NPROC`` is set. The pool has one thread per device by default, and a device's part of
    a step runs its tasks on it: with every thread but one held by devices already waiting in
    an all-reduce, on a loaded machine the last device did not arrive within XLA's rendezvous
    timeout and the process aborted. Must run before JAX starts its CPU backend (at import of
    this module, which every path to the devices passes)."""
    found = FORCED_DEVICES.search(environ.get("XLA_FLAGS", ""))
    if found is None or "PJRT_NPROC" in environ:
        return
    devices = int(found.group(1))
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    if devices > cores:
        environ["PJRT_NPROC"] = str(THREADS_PER_FORCED_DEVICE * devices)


size_thread_pool_for_forced_devices()

HOSTS, DEVICES = "hosts", "devices"
BATCH_AXES = (HOSTS, DEVICES)  # a batch's leading axis is split over every device
DISTRIBUTED_ENV = "JAXCOLOR_DISTRIBUTED"


def initialize_distributed(enabled: bool) -> None:
    """Join the multi-process runtime (TPU pod slices, GPU clusters) before any JAX work.

    ``jax.distributed.initialize()`` finds the coordinator itself on Cloud TPU and under SLURM;
    elsewhere set JAX_COORDINATOR_ADDRESS (host:port of process 0), JAX_NUM_PROCESSES and
    JAX_PROCESS_ID on every process.
    """
    if not (enabled or os.environ.get(DISTRIBUTED_ENV, "") not in ("", "0")):
        return
    explicit = {}
    if "JAX_NUM_PROCESSES" in os.environ:
        explicit = {"coordinator_address": os.environ.get("JAX_COORDINATOR_ADDRESS"),
                    "num_processes": int(os.environ["JAX_NUM_PROCESSES"]),
                    "process_id": int(os.environ.get("JAX_PROCESS_ID", "0"))}
    try:
        jax.distributed.initialize(**explicit)
    except (ValueError, RuntimeError) as err:
        raise UserError(f"--distributed: jax.distributed.initialize() failed ({err}). Outside "
                        f"Cloud TPU and SLURM set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and "
                        f"JAX_PROCESS_ID.") from err
    if jax.default_backend() == "cpu" and jax.process_count() > 1:
        # CPU processes joined by gloo hung in their first collective when their programs came
        # from the persistent compilation cache (jaxlib 0.12.1; a fresh compile ran), so they
        # compile afresh.
        jax.config.update("jax_enable_compilation_cache", False)


def data_mesh() -> Mesh:
    """hosts × devices-per-host, each host's devices in one row."""
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    return Mesh(np.array(devices).reshape(jax.process_count(), -1), BATCH_AXES)


def sharded(mesh: Mesh) -> NamedSharding:
    """Leading axis split over every device (batches)."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def per_host(mesh: Mesh) -> NamedSharding:
    """Leading axis split over hosts, each block copied on its host's devices (training set)."""
    return NamedSharding(mesh, PartitionSpec(HOSTS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """The global batch must split evenly over the devices; say which sizes would."""
    devices = mesh.size
    if batch_size % devices:
        lower = max(devices, batch_size - batch_size % devices)
        raise UserError(f"--batch_size={batch_size} does not divide over the {devices} devices; "
                        f"use a multiple of {devices}, e.g. {lower} or {lower + devices}.")


def process_share(count: int) -> slice:
    """This process's equal, contiguous share of ``count`` rows (the remainder is dropped)."""
    per_process = count // jax.process_count()
    start = jax.process_index() * per_process
    return slice(start, start + per_process)


def global_array(local: np.ndarray, sharding: NamedSharding, global_rows: int) -> jax.Array:
    """The global array whose leading-axis block on this process's devices is ``local``."""
    return jax.make_array_from_process_local_data(sharding, local,
                                                  (global_rows, *local.shape[1:]))


def local_copy(tree: Any) -> Any:
    """A replicated pytree as single-device arrays on this process (for predictions, figures
    and analysis, which each process may run on its own)."""
    return jax.tree.map(lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree)


def broadcast_from_main(value: np.ndarray) -> np.ndarray:
    """Process 0's ``value`` on every process (identity with one process)."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.broadcast_one_to_all(value))


def digest_over_processes(local: bytes) -> bytes:
    """One digest of every process's ``local`` digest (``local`` itself with one process): the
    same on every process, e.g. of data that each process holds only a share of."""
    if jax.process_count() == 1:
        return local
    from jax.experimental import multihost_utils

    every = multihost_utils.process_allgather(np.frombuffer(local, np.uint8))
    return hashlib.sha256(np.asarray(every).tobytes()).digest()


def is_main_process() -> bool:
    return jax.process_index() == 0
